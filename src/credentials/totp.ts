/**
 * TOTP (RFC 6238, SHA-1, 6 digits, 30 s) with otplib.
 *
 * Threat note: a code is accepted within ±1 step for clock drift, and never twice: the caller stores the accepted
 * time step and passes it back as `afterStep`, so a code replayed inside its window is refused.
 */
import { generate, generateSecret, generateURI, verify } from 'otplib';

/** A new base32 TOTP secret (160 bits). */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** otpauth:// URI for authenticator apps (QR code). */
export function totpUri(secret: string, label: string, issuer: string): string {
  return generateURI({ strategy: 'totp', issuer, label, secret });
}

/** Checks a 6-digit code; returns the accepted time step, or null. */
export async function checkTotp(secret: string, code: string, afterStep: number | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const r = await verify({
    strategy: 'totp',
    secret,
    token: code,
    epochTolerance: 30,
    ...(afterStep !== null ? { afterTimeStep: afterStep } : {}),
  });
  return r.valid && 'timeStep' in r ? r.timeStep : null;
}

/** The current code for a secret (tests and demos). */
export function currentTotp(secret: string, epochSeconds?: number): Promise<string> {
  return generate({ strategy: 'totp', secret, ...(epochSeconds !== undefined ? { epoch: epochSeconds } : {}) });
}
