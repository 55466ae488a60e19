/** Keys: the master key, sealing, the secret root and derived secrets, signing keys and their lifecycle. */
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
export { keysFingerprint, withKeyLock } from './signing.repository.ts';
export {
  activateKey,
  ensureActiveKeys,
  generateKey,
  isSigningAlg,
  type KeyMaterial,
  type KeyPolicy,
  listKeys,
  loadKeyMaterial,
  retireKey,
  revokeKey,
  rewrapKeys,
  rotateKey,
  runScheduledTransitions,
  SIGNING_ALGS,
  type SigningAlg,
} from './signing.service.ts';
