/**
 * Back-channel logout, delivered from a queue so that a slow or absent portal never holds up a citizen's logout.
 *
 * oidc-provider signs the logout token and hands the POST to our `fetch`; we store it in `backchannel_outbox` and
 * answer at once. A worker on every node claims due deliveries (a lease, so two nodes never send one twice at the
 * same time), POSTs them with a short timeout, and retries failures with exponential backoff until the deadline.
 * Every outcome goes to the audit trail. The POST refuses special-use addresses (a portal's URL cannot make a node
 * call into its own network: outgoing.ts `postForm`), as oidc-provider's own requests do.
 */
import { decodeJwt } from 'jose';
import { type Kysely, sql } from 'kysely';
import { recordEvent } from '../audit/index.ts';
import type { DB } from '../db/index.ts';
import { outgoingFetch, postForm } from './outgoing.ts';

type Fetch = (url: string, options: RequestInit) => Promise<Response>;

/** Wraps oidc-provider's fetch: logout-token POSTs are queued, everything else passes through (outgoing.ts). */
export function queueingFetch(db: Kysely<DB>, deadlineSeconds: number, pass: Fetch = outgoingFetch): Fetch {
  return async (url, options) => {
    const body = options.body;
    const token = body instanceof URLSearchParams ? body.get('logout_token') : null;
    if (options.method !== 'POST' || !token) return pass(url, options);
    const claims = decodeJwt(token);
    await db
      .insertInto('backchannel_outbox')
      .values({
        client_id: String(claims.aud),
        url,
        body: body!.toString(),
        subject: typeof claims.sub === 'string' ? claims.sub : null,
        sid: typeof claims.sid === 'string' ? claims.sid : null,
        deadline: new Date(Date.now() + deadlineSeconds * 1000),
      })
      .execute();
    return new Response(null, { status: 200 });
  };
}

/** Backoff before attempt n+1: 1, 2, 4, ... seconds, at most 30. */
const backoff = (attempts: number) => Math.min(2 ** attempts, 30) * 1000;

/** How one delivery attempt ended. */
export type DeliveryOutcome = 'delivered' | 'retrying' | 'abandoned';

/** Options of `deliverDue`: the per-POST timeout, the batch size, and who hears each attempt's outcome (metrics). */
export interface DeliverOptions {
  timeoutMs?: number;
  limit?: number;
  onOutcome?: (outcome: DeliveryOutcome) => void;
}

/** Delivers due back-channel logouts; returns how many were attempted. */
export async function deliverDue(db: Kysely<DB>, opts: DeliverOptions = {}): Promise<number> {
  const { timeoutMs = 3000, limit = 20, onOutcome } = opts;
  // Claim with a lease: other nodes skip these rows until it runs out.
  const claimed = await sql<{
    id: string;
    client_id: string;
    url: string;
    body: string;
    subject: string | null;
    attempts: number;
    deadline: Date;
  }>`
    update backchannel_outbox set next_at = now() + interval '60 seconds', attempts = attempts + 1
    where id in (
      select id from backchannel_outbox
      where delivered_at is null and failed_at is null and next_at <= now()
      order by next_at limit ${limit} for update skip locked)
    returning id, client_id, url, body, subject, attempts, deadline`.execute(db);
  await Promise.all(
    claimed.rows.map(async (d) => {
      let error: string | null = null;
      try {
        const status = await postForm(d.url, d.body, timeoutMs);
        if (status !== 200 && status !== 204) error = `HTTP ${status}`;
      } catch (err) {
        const name = (err as Error).name;
        error =
          name === 'TimeoutError' || name === 'AbortError'
            ? 'timeout'
            : ((err as Error).message ?? 'error').slice(0, 200);
      }
      // Retried for the whole window: the last attempt comes at the deadline, and only a failure then gives up.
      const now = Date.now();
      const deadline = new Date(d.deadline).getTime();
      const giveUp = error !== null && now >= deadline;
      await db
        .updateTable('backchannel_outbox')
        .set(
          error === null
            ? { delivered_at: new Date(), body: null, last_error: null }
            : giveUp
              ? { failed_at: new Date(), body: null, last_error: error }
              : { next_at: new Date(Math.min(now + backoff(d.attempts), deadline)), last_error: error },
        )
        .where('id', '=', d.id)
        .execute();
      onOutcome?.(error === null ? 'delivered' : giveUp ? 'abandoned' : 'retrying');
      await recordEvent(db, {
        actor: { type: 'system' },
        action: 'backchannel_logout',
        outcome: error === null ? 'success' : 'failure',
        reason: error === null ? null : giveUp ? `abandoned: ${error}` : `retrying: ${error}`,
        clientId: d.client_id,
        details: { attempt: d.attempts },
      });
    }),
  );
  return claimed.rows.length;
}

/** Bound of the backlog count: a scrape never counts more rows than this. */
const BACKLOG_COUNT_LIMIT = 10_000;

/** Undelivered back-channel logouts (up to BACKLOG_COUNT_LIMIT) and the oldest one's age in seconds, for metrics. */
export async function backchannelBacklog(db: Kysely<DB>): Promise<{ depth: number; oldestAgeSeconds: number }> {
  const r = await sql<{ depth: string; age: string | null }>`
    select count(*) as depth, extract(epoch from now() - min(created_at)) as age from (
      select created_at from backchannel_outbox where delivered_at is null and failed_at is null
      limit ${BACKLOG_COUNT_LIMIT}) pending`.execute(db);
  const row = r.rows[0];
  return { depth: Number(row?.depth ?? 0), oldestAgeSeconds: Math.max(0, Number(row?.age ?? 0)) };
}
