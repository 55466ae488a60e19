/**
 * Assurance levels: what a portal asks for (voluntary `acr_values`, an essential `acr` in the claims parameter, the
 * client's registered minimum, `default_acr_values`) turned into levels, the login-prompt check that asks for a
 * step-up when the SSO session's level is below what is needed, and the `acr` value the portal's tokens carry.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors, interactionPolicy } from 'oidc-provider';
import type { Config } from '../config/index.ts';

type Acr = Config['acr'];

/** Levels a request needs: `required` must be met (or the portal gets unmet_authentication_requirements);
 * `voluntary` is met when the account can. 3 means "a value no level satisfies". */
export interface Requirement {
  required: number;
  voluntary: number;
}

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
    required = Math.max(required, known.length ? Math.min(...known) : 3);
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
 */
export function echoedAcr(acr: Acr, params: AcrParams, sessionAcr: string | undefined): string | undefined {
  const have = levelOf(acr, sessionAcr);
  let best: { value: string; level: number } | undefined;
  for (const value of askedAcrValues(params)) {
    const level = levelOf(acr, value);
    if (level > 0 && level <= have && level > (best?.level ?? 0)) best = { value, level };
  }
  return best?.value ?? sessionAcr;
}

/** The minimum level registered for a client (`dinhdanh_min_level`), 1 by default. */
export function clientMinLevel(client: { metadata(): Record<string, unknown> } | undefined): number {
  const v = client?.metadata().dinhdanh_min_level;
  return typeof v === 'number' ? v : 1;
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
        // The session's level, never above the account's current one (a reset second factor ends level 2 at once).
        // (`session.acr`, the canonical value: `oidc.acr` is the value echoed to the portal, possibly a lower one.)
        const have = Math.min(levelOf(acr, oidc.session.acr), await accountLevel(oidc.session.accountId));
        if (have >= Math.max(need.required, need.voluntary)) return Check.NO_NEED_TO_PROMPT;
        if (have >= need.required && (await accountLevel(oidc.session.accountId)) < need.voluntary) {
          return Check.NO_NEED_TO_PROMPT; // voluntary level the account cannot reach: best effort
        }
        return Check.REQUEST_PROMPT;
      },
      ({ oidc }: KoaContextWithOIDC) => ({
        ...requirementOf(acr, oidc.params as never, clientMinLevel(oidc.client as never)),
      }),
    ) as never,
  );
  return policy;
}
