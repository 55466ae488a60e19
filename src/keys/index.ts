/** Keys: the master key, sealing, the secret root and derived secrets, signing keys and their lifecycle. */
export { deriveCookieKeys, derivePairwiseSecret, loadMasterKey, pinPseudonymizer, seal, unseal } from './master.ts';
export { loadSecretRoot, rewrapSecrets } from './secrets.ts';
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
