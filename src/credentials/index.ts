/** Credentials: passwords (argon2id) and high-entropy secrets (SHA-256). */
export { argon2idHasher, MAX_PASSWORD_LENGTH, type PasswordHasher } from './password.ts';
export { checkNewPassword, type PasswordProblem } from './password-policy.ts';
export { hashSecret, newSecret, secretMatches } from './secrets.ts';
export { checkTotp, currentTotp, newTotpSecret, totpUri } from './totp.ts';
