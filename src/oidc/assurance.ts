/**
 * Assurance levels: what a portal asks for (voluntary `acr_values`, an essential `acr` in the claims parameter, the
 * client's registered minimum, `default_acr_values`) turned into levels, the login-prompt check that asks for a
 * step-up when the SSO session's level is below what is needed, and the `acr` value the portal's tokens carry.
 *
 * Levels: 1 (password), 2 (password + second factor, or a level-2 passkey), 3 (phishing-resistant: level 2 proven
 * with a passkey, PHISHING_RESISTANT_ACR; only a level-2 account reaches it, and only with a passkey).
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors, interactionPolicy } from 'oidc-provider';
import type { Config } from '../config/index.ts';
import { loadedAccount } from './claims.ts';

type Acr = Config['acr'];

/** Levels a request needs: `required` must be met (or the portal gets unmet_authentication_requirements);
 * `voluntary` is met when the account can. UNSATISFIABLE means "a value no level satisfies". */
export interface Requirement {
  required: number;
  voluntary: number;
}

/** The phishing-resistant level: level 2 proven with a passkey. */
export const PHISHING_RESISTANT = 3;
/** A required level no authentication reaches (an essential `acr` of unknown values only). */
export const UNSATISFIABLE = 4;

/** The canonical `acr` value of a level. */
export const acrOfLevel = (acr: Acr, level: number): string =>
  level >= PHISHING_RESISTANT ? acr.phishingResistant : level >= 2 ? acr.level2 : acr.level1;

/** The level an `acr` value stands for (0 when unknown). */
export const levelOf = (acr: Acr, value: unknown): number => (typeof value === 'string' ? (acr.levels[value] ?? 0) : 0);

/** Authorization parameters that ask for an `acr`. */
type AcrParams = { acr_values?: unknown; claims?: unknown };

/** The `acr` member of the claims parameter's `id_token` object, if any (the parameter may still be a string). */
function claimsAcr(params: AcrParams): { essential?: boolean; value?: unknown; values?: unknown } | undefined {
  let claims = params.claims;
  if (typeof claims === 'string') {
    try {
      claims = JSON.parse(claims);
    } catch {
      claims = undefined;
    }
  }
  const request = (claims as { id_token?: { acr?: unknown } } | undefined)?.id_token?.acr;
  return request && typeof request === 'object' ? request : undefined;
}

/** Reads the requirement from authorization parameters and the client's minimum level. */
export function requirementOf(acr: Acr, params: AcrParams, minLevel: number): Requirement {
  const request = claimsAcr(params) as { essential?: boolean; value?: string; values?: string[] } | undefined;
  let required = minLevel;
  if (request?.essential) {
    if (
      request.values !== undefined &&
      !(Array.isArray(request.values) && request.values.every((v) => typeof v === 'string'))
    )
      throw new errors.InvalidRequest('claims.id_token.acr.values must be an array of strings');
    if (request.value !== undefined && typeof request.value !== 'string')
      throw new errors.InvalidRequest('claims.id_token.acr.value must be a string');
    const values = request.values ?? (request.value ? [request.value] : []);
    const known = values.map((v) => levelOf(acr, v)).filter((l) => l > 0);
    required = Math.max(required, known.length ? Math.min(...known) : UNSATISFIABLE);
  }
  const first = String(params.acr_values ?? '')
    .split(' ')
    .map((v) => levelOf(acr, v))
    .find((l) => l > 0);
  return { required, voluntary: first ?? 0 };
}

/**
 * The values a portal asked for, in its order: an essential `acr` claim's values (the answer must be one of them),
 * else `acr_values`, else a voluntary `acr` claim's values.
 */
function askedAcrValues(params: AcrParams): string[] {
  const request = claimsAcr(params);
  const strings = (v: unknown) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
  const claimed = request ? [...strings(request.values), ...strings(request.value)] : [];
  if (request?.essential === true) return claimed;
  const voluntary = typeof params.acr_values === 'string' ? params.acr_values.split(' ').filter(Boolean) : [];
  return voluntary.length ? voluntary : claimed;
}

/**
 * The `acr` a portal's ID token carries (OIDC Core 5.5.1.1): of the values it asked for, in its own vocabulary
 * (aliases as sent), one the authentication satisfies, the highest level first and the portal's order among equals.
 * The canonical value of the session's level when it asked for none, or for none that is satisfied (a voluntary
 * request the account cannot meet; an essential one never gets this far, the assurance check stops it).
 * `minLevel` (the client's registered minimum): the answer never names a lower level than the portal requires, so a
 * portal registered for the phishing-resistant level gets that value even if it also asked for level 2.
 */
export function echoedAcr(
  acr: Acr,
  params: AcrParams,
  sessionAcr: string | undefined,
  minLevel = 1,
): string | undefined {
  const have = levelOf(acr, sessionAcr);
  let best: { value: string; level: number } | undefined;
  for (const value of askedAcrValues(params)) {
    const level = levelOf(acr, value);
    if (level >= minLevel && level <= have && level > (best?.level ?? 0)) best = { value, level };
  }
  return best?.value ?? sessionAcr;
}

/**
 * The minimum level registered for a client: PHISHING_RESISTANT when registered with `--require-phishing-resistant`
 * (`dinhdanh_phishing_resistant`), else `dinhdanh_min_level`, 1 by default.
 */
export function clientMinLevel(client: { metadata(): Record<string, unknown> } | undefined): number {
  const metadata = client?.metadata();
  if (metadata?.dinhdanh_phishing_resistant === true) return PHISHING_RESISTANT;
  const v = metadata?.dinhdanh_min_level;
  return typeof v === 'number' ? v : 1;
}

/**
 * The level a session proves now: its own, never above the account's current level (a reset second factor ends
 * level 2 at once); the phishing-resistant level stands while the account is at level 2.
 */
export const sessionLevel = (acr: Acr, sessionAcr: unknown, accountLevel: number): number =>
  Math.min(levelOf(acr, sessionAcr), accountLevel >= 2 ? PHISHING_RESISTANT : accountLevel);

/**
 * Whether a session at level `have` must step up for `need`, on an account at `accountLevel` (0 to 2): always below
 * the required level; below the voluntary one only when the account can do better (a voluntary phishing-resistant
 * request of a level-2 session is met at level 2: best effort, like a voluntary level 2 of a level-1 account).
 */
export function needsStepUp(need: Requirement, have: number, accountLevel: number): boolean {
  if (have < need.required) return true;
  return Math.min(need.voluntary, accountLevel) > have;
}

/** Replaces oidc-provider's acr checks on the login prompt with ours (aliases, client minimum, step-up). */
export function assurancePolicy(acr: Acr, accountLevel: (accountId: string) => Promise<number>) {
  const { Check, base } = interactionPolicy;
  const policy = base();
  const login = policy.get('login')!;
  const checks = (login as unknown as { checks: { reason: string }[] }).checks;
  for (const reason of ['essential_acrs', 'essential_acr']) {
    const i = checks.findIndex((c) => c.reason === reason);
    if (i !== -1) checks.splice(i, 1);
  }
  checks.push(
    new Check(
      'assurance',
      'a higher level of assurance is needed',
      async (ctx: KoaContextWithOIDC) => {
        const { oidc } = ctx;
        if (!oidc.session?.accountId) return Check.NO_NEED_TO_PROMPT;
        const need = requirementOf(acr, oidc.params as never, clientMinLevel(oidc.client as never));
        // (`session.acr`, the canonical value: `oidc.acr` is the value echoed to the portal, possibly a lower one.)
        // The level of the account loaded for this request (the same account, read moments ago), else read it.
        const level = loadedAccount(ctx, oidc.session.accountId)?.level ?? (await accountLevel(oidc.session.accountId));
        const have = sessionLevel(acr, oidc.session.acr, level);
        return needsStepUp(need, have, level) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
      },
      ({ oidc }: KoaContextWithOIDC) => ({
        ...requirementOf(acr, oidc.params as never, clientMinLevel(oidc.client as never)),
      }),
    ) as never,
  );
  return policy;
}
