/** E-ID accounts bound to residents. */
export {
  type AccountProfile,
  countAccounts,
  createAccount,
  findAccountProfile,
  type LoginFailure,
  type LoginResult,
  verifyPassword,
} from './accounts.service.ts';
