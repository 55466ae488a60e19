/**
 * Usage per portal, for its agency (issue 15, item 5): per day over the last 14 days, sign-ins by level, failed
 * sign-ins, consents and back-channel logout failures, from the audit trail; and the grants alive now. The trail
 * query is one range scan of the `(client_id, at)` index (a portal's events of the window, whatever the trail's
 * size), grouped in the database; levels come from each login's `acr` through ACR_* (config.acr.levels).
 */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';

/** One day of a portal's usage. */
export interface UsageDay {
  /** YYYY-MM-DD in the service's time zone. */
  day: string;
  /** Successful sign-ins by level (3: phishing-resistant level 2). */
  logins: { 1: number; 2: number; 3: number };
  failedLogins: number;
  consents: number;
  backchannelFailures: number;
}

/** A portal's usage: the days, oldest first, and the grants alive now. */
export interface PortalUsage {
  days: UsageDay[];
  activeGrants: number;
}

/** Audited actions that are a sign-in attempt at a portal (failures of any step count as a failed sign-in). */
const LOGIN_STEPS = ['login', 'login.second_factor', 'login.passkey'];
/** A consent given, on the consent page or by law (implicit). */
const CONSENTS = ['consent.given', 'consent.implicit'];
const BACKCHANNEL = 'backchannel_logout';

/** The calendar day of `d` in `timeZone`, as YYYY-MM-DD. */
const dayOf = (d: Date, timeZone: string) =>
  new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);

/**
 * The portal's counts per action, outcome, acr and day since `since`: one range scan of `audit_events_client_at`
 * (client_id = $1 and at >= $2), then an aggregate over those rows only.
 */
export function usageQuery(clientId: string, since: Date, timeZone: string) {
  return sql<{ day: string; action: string; outcome: string; acr: string | null; n: string }>`
    select to_char(at at time zone ${timeZone}, 'YYYY-MM-DD') as day, action, outcome, details->>'acr' as acr,
      count(*) as n
    from audit_events
    where client_id = ${clientId} and at >= ${since}
      and action in (${sql.join([...LOGIN_STEPS, ...CONSENTS, BACKCHANNEL])})
    group by 1, 2, 3, 4`;
}

/** Grants of the portal that have not expired (oidc-provider's Grant rows in `oidc_payloads`). */
async function activeGrants(db: Kysely<DB>, clientId: string): Promise<number> {
  const r = await db
    .selectFrom('oidc_payloads')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('model', '=', 'Grant')
    .where(sql<string>`payload->>'clientId'`, '=', clientId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** The last `days` days (today included) of a portal's usage, in `timeZone`; `levels` maps an acr to its level. */
export async function portalUsage(
  db: Kysely<DB>,
  clientId: string,
  levels: Record<string, number>,
  timeZone: string,
  days = 14,
  now = new Date(),
): Promise<PortalUsage> {
  const dayMs = 86_400_000;
  const list: UsageDay[] = [];
  for (let i = days - 1; i >= 0; i--)
    list.push({
      day: dayOf(new Date(now.getTime() - i * dayMs), timeZone),
      logins: { 1: 0, 2: 0, 3: 0 },
      failedLogins: 0,
      consents: 0,
      backchannelFailures: 0,
    });
  const byDay = new Map(list.map((d) => [d.day, d]));
  // A day more than the window: the oldest day starts at its local midnight, somewhere in the day before `days`.
  const since = new Date(now.getTime() - days * dayMs);
  const { rows } = await usageQuery(clientId, since, timeZone).execute(db);
  for (const r of rows) {
    const d = byDay.get(r.day);
    if (!d) continue;
    const n = Number(r.n);
    if (LOGIN_STEPS.includes(r.action)) {
      if (r.outcome === 'failure') d.failedLogins += n;
      else if (r.action === 'login') {
        const level = Math.min(3, Math.max(1, levels[r.acr ?? ''] ?? 1)) as 1 | 2 | 3;
        d.logins[level] += n;
      }
    } else if (CONSENTS.includes(r.action)) {
      if (r.outcome === 'success') d.consents += n;
    } else if (r.action === BACKCHANNEL && r.outcome === 'failure') d.backchannelFailures += n;
  }
  return { days: list, activeGrants: await activeGrants(db, clientId) };
}

/** The latest request to move a portal to production (`client.production_requested`), if any: when, and why. */
export async function productionRequest(
  db: Kysely<DB>,
  clientId: string,
): Promise<{ at: Date; reason: string | null } | undefined> {
  // The portal's events newest first: a backward scan of `audit_events_client_at`, stopped at the first match.
  return db
    .selectFrom('audit_events')
    .select(['at', 'reason'])
    .where('client_id', '=', clientId)
    .where('action', '=', 'client.production_requested')
    .orderBy('at', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** An agency's request for what only security staff may grant (`client.change_requested`). */
export interface ChangeRequest {
  clientId: string;
  at: Date;
  reason: string | null;
  /** Scopes asked for (national_id). */
  scopes: string[];
  /** Set when production was asked for too. */
  environment: 'production' | null;
}

/**
 * The latest change request of each portal (or of one), newest first: a backward scan of `audit_events_action`
 * (action, seq), bounded; requests are rare, a handful per portal.
 */
export async function changeRequests(db: Kysely<DB>, clientId?: string, limit = 500): Promise<ChangeRequest[]> {
  let q = db
    .selectFrom('audit_events')
    .select(['client_id', 'at', 'reason', 'details'])
    .where('action', '=', 'client.change_requested');
  if (clientId) q = q.where('client_id', '=', clientId);
  const rows = await q
    .orderBy('seq', 'desc')
    .limit(clientId ? 1 : limit)
    .execute();
  const seen = new Set<string>();
  const out: ChangeRequest[] = [];
  for (const r of rows) {
    if (!r.client_id || seen.has(r.client_id)) continue;
    seen.add(r.client_id);
    const d = (r.details ?? {}) as { scopes?: unknown; environment?: unknown };
    out.push({
      clientId: r.client_id,
      at: new Date(r.at as unknown as string),
      reason: r.reason,
      scopes: Array.isArray(d.scopes) ? d.scopes.filter((s): s is string => typeof s === 'string') : [],
      environment: d.environment === 'production' ? 'production' : null,
    });
  }
  return out;
}

/** What of a request is still to be granted, given the portal as it is now (empty: nothing; the request is closed). */
export function openPart(
  r: ChangeRequest,
  portal: { scope: string; environment: 'sandbox' | 'production' },
): { scopes: string[]; environment: 'production' | null } {
  const has = new Set(portal.scope.split(' '));
  return {
    scopes: r.scopes.filter((s) => !has.has(s)),
    environment: r.environment === 'production' && portal.environment === 'sandbox' ? 'production' : null,
  };
}
