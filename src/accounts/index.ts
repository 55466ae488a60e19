/** E-ID accounts bound to residents: level 1 (enrolled, password) and level 2 (in person, second factor). */

export { type AccountWithResidentRow, accountWithResidentJson } from './accounts.repository.ts';
export {
  type AccountProfile,
  changePassword,
  countAccounts,
  createAccount,
  findAccountProfile,
  type LoginFailure,
  verifyPassword,
} from './accounts.service.ts';
export { deleteExpiredCodes } from './codes.repository.ts';
export { disableAccountsOfInactiveResidents, disableAccountsOfResidents } from './disable.ts';
export {
  enrollInPerson,
  finishEnrollment,
  parseBirthDate,
  SMS_TEXT,
  startEnrollment,
} from './enroll.ts';
export {
  confirmTotp,
  type EnrollmentAuthority,
  issueActivationCode,
  mayEnrollSecondFactor,
  pendingTotpSecret,
  redeemActivationCode,
  rewrapTotpSecrets,
  secondFactorState,
  startTotpEnrollment,
  verifySecondFactor,
} from './level2.ts';
export { accountIdForPin, reactivateAccount, resetTotp, showAccount, suspendAccount } from './officer.ts';
export {
  type AssertionFailure,
  authenticationOptions,
  credentialIdOf,
  FRESH_LEVEL2_MS,
  listPasskeys,
  MAX_PASSKEYS,
  type PasskeyLogin,
  type PasskeyView,
  passkeyAssurance,
  passkeyCount,
  type RegistrationFailure,
  type RelyingParty,
  registerPasskey,
  registrationOptions,
  relyingParty,
  removePasskey,
  renamePasskey,
  verifyPasskeyAssertion,
} from './passkeys.ts';
export { type CodeBook, codeBook } from './possession.ts';
export {
  completeReset,
  type PendingReset,
  pendingReset,
  redeemOfficerResetCode,
  resetPasswordProblem,
  startRecovery,
  verifyRecoveryCode,
} from './recovery.ts';
export { type PendingResetNotice, registeredPhone, resetNotice } from './reset-notice.ts';
