/** Keys: the master key, sealing, the secret root and derived secrets, signing keys and their lifecycle. */
export { type CookieSigner, cookieSigner } from './cookie-signer.ts';
export {
  deriveCodeKey,
  deriveCookieKeys,
  deriveCsrfSecret,
  derivePairwiseSecret,
  deriveTokenKey,
  loadMasterKey,
  pinPseudonymizer,
  seal,
  unseal,
} from './master.ts';
export { cookieGeneration, loadSecretRoot, rewrapSecrets, rotateCookieKeys } from './secrets.ts';
export { keysFingerprint } from './signing.repository.ts';
export {
  activateKey,
  ensureActiveKeys,
  generateKey,
  listKeys,
  loadKeyMaterial,
  retireKey,
  revokeKey,
  rewrapKeys,
  rotateKey,
  runScheduledTransitions,
  SIGNING_ALGS,
} from './signing.service.ts';
