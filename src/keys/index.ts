/** Keys: the master key, sealing, cookie keys and signing keys. */
export { deriveCookieKeys, derivePairwiseSecret, loadMasterKey, pinPseudonymizer, seal, unseal } from './master.ts';
export { loadSigningJwks } from './signing.service.ts';
