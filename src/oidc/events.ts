/** Records oidc-provider's protocol events (tokens, revocation, logout, back-channel delivery) in the audit trail. */
import type { Kysely } from 'kysely';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent, AuditQueue } from '../audit/index.ts';
import type { DB } from '../db/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { afterRequestCommit } from './adapter.ts';
import { upsertSessionDevice } from './sessions.ts';

type Ctx = KoaContextWithOIDC;

function from(ctx: Ctx | undefined): Pick<AuditEvent, 'clientId' | 'ip' | 'userAgent' | 'subject'> {
  const e = ctx?.oidc?.entities as Record<string, { accountId?: string }> | undefined;
  const subject =
    e?.Account?.accountId ?? e?.AuthorizationCode?.accountId ?? e?.RefreshToken?.accountId ?? e?.Session?.accountId;
  return { clientId: ctx?.oidc?.client?.clientId, ip: ctx?.ip, userAgent: ctx?.get?.('user-agent'), subject };
}

/** Subscribes the audit trail to the provider; failures to record are reported to `onError`, never thrown. */
export function auditProviderEvents(
  provider: Provider,
  db: Kysely<DB>,
  audit: AuditQueue,
  onError: (err: unknown) => void,
): void {
  const record = (e: AuditEvent) => audit.record(e);
  provider.on('grant.success', (ctx: Ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type ?? '');
    const action = grantType === 'refresh_token' ? 'token.refreshed' : 'token.issued';
    const who = from(ctx);
    // Once the tokens are committed (adapter.ts holds a token request's writes until its answer): a refresh token or
    // code another request redeemed first makes this request an invalid_grant instead.
    afterRequestCommit((outcome) =>
      record(
        outcome === 'committed'
          ? {
              actor: { type: 'client', id: ctx.oidc.client?.clientId },
              action,
              outcome: 'success',
              details: { grantType },
              ...who,
            }
          : {
              actor: { type: 'client', id: ctx.oidc.client?.clientId },
              action: 'token.request',
              outcome: 'failure',
              reason: outcome === 'failed' ? 'temporarily_unavailable' : 'invalid_grant',
              details: { grantType, ...(outcome === 'refused' ? { why: 'already consumed' } : {}) },
              ...who,
            },
      ),
    );
  });
  provider.on('grant.error', (ctx: Ctx, err: { error?: string }) => {
    record({
      actor: { type: 'client', id: ctx.oidc?.client?.clientId },
      action: 'token.request',
      outcome: 'failure',
      reason: err.error,
      ...from(ctx),
    });
  });
  provider.on('grant.revoked', (ctx: Ctx, grantId: string) => {
    record({
      actor: { type: 'system' },
      action: 'grant.revoked',
      outcome: 'success',
      details: { grantId },
      ...from(ctx),
    });
  });
  provider.on('end_session.success', (ctx: Ctx) => {
    record({ actor: { type: 'citizen' }, action: 'logout', outcome: 'success', ...from(ctx) });
  });
  // Back-channel outcomes are recorded by the delivery worker (backchannel.ts), which knows the real result.
  provider.on('authorization.success', (ctx: Ctx) => {
    const session = ctx.oidc.session;
    if (!session?.accountId || !session.uid) return;
    upsertSessionDevice(db, {
      uid: session.uid,
      accountId: session.accountId,
      userAgent: ctx.get('user-agent').slice(0, 300) || null,
      ip: ctx.ip,
    }).catch(onError);
  });
}

/** Counts tokens issued by the provider's token endpoint, by grant type and client. */
export function countProviderEvents(provider: Provider, metrics: Metrics): void {
  provider.on('grant.success', (ctx: Ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type ?? '');
    const clientId = ctx.oidc.client?.clientId ?? 'unknown';
    afterRequestCommit((outcome) => {
      if (outcome === 'committed') metrics.tokenIssued(grantType, clientId);
    });
  });
}
