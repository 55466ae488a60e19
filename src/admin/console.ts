import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Kysely } from 'kysely';
import { accountIdForPin, findAccountProfile } from '../accounts/index.ts';
import { type Actor, actorDetails, lastVerifiedAt, recordEvent } from '../audit/index.ts';
import { type ClientChanges, type ClientView, getClient, listClients } from '../clients/index.ts';
import type { Config } from '../config/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { byNonce, csrfToken, formNonce, requireCsrf } from '../interactions/csrf.ts';
import { firstPartySignIn } from '../interactions/first-party.ts';
import { listKeys, SIGNING_ALGS } from '../keys/index.ts';
import type { Limiter } from '../limits/index.ts';
import { CONSOLE_CLIENT_ID, type ProviderRef } from '../oidc/index.ts';
import { ensureTestCitizens, listTestCitizens } from '../seed/sandbox.ts';
import {
  agencyOf,
  authorize,
  type Capability,
  isStaffPin,
  listStaff,
  type Principal,
  ROLES,
  type StaffGrant,
  staffGrants,
  type Target,
} from '../staff/index.ts';
import { html, type Lang, pickLang, vnDateTime } from '../ui/index.ts';
import {
  type ActDeps,
  activate,
  approveClient,
  approveClientChange,
  changeClient,
  disableClient,
  grantStaffRole,
  passwordResetCode,
  reactivate,
  registerClient,
  resetSecondFactor,
  retire,
  revoke,
  revokeStaffRole,
  rotate,
  rotateCookies,
  rotateSecret,
  stageKey,
  suspend,
  unlock,
  verifyAuditChain,
  verifyInPerson,
  viewAccount,
} from './acts.ts';
import { searchAudit } from './audit-search.ts';
import { checkChangeWithoutApproval } from './client-rules.ts';
import { ct } from './console-i18n.ts';
import {
  AGENCY_METHODS,
  AGENCY_SCOPES,
  type Area,
  type AuditFilters,
  agencyView,
  areasOf,
  auditPersonView,
  auditSearchView,
  type CitizenView,
  CONSOLE_CSS,
  chainView,
  citizenView,
  confirmView,
  type EditInput,
  EMPTY_REGISTRATION,
  editInputOf,
  editView,
  type Frame,
  homeView,
  importsView,
  lookupView,
  messageView,
  OFFICER_ACTS,
  type OfficerAct,
  type PendingChange,
  type PortalView,
  type RegisterInput,
  registerView,
  revokeKeyView,
  secretView,
  securityView,
  staffView,
  usageView,
} from './console-page.ts';
import { denialToAudit } from './denials.ts';
import { changeRequests, openPart, portalUsage, productionRequest } from './usage.ts';

/** What the console needs. */
export interface ConsoleDeps {
  /** The current provider (swapped when signing keys change). */
  host: ProviderRef;
  db: Kysely<DB>;
  issuer: string;
  csrfSecret: string;
  acr: Config['acr'];
  master: Buffer;
  /** For the test citizens' passwords (created on an agency admin's first visit). */
  hasher: PasswordHasher;
  /** Key lifetimes (KEY_* settings). */
  keys: Config['keys'];
  /** Production registration rules (NODE_ENV=production). */
  production: boolean;
  /** The personal-ID pseudonym: the login limiter's key an officer unlocks. */
  pseudonym: (pin: string) => string;
  /** The login limiter (kind `login`), for the officer's unlock. */
  loginLimiter: Limiter;
  /** TIME_ZONE: the days of the usage tables. */
  timeZone: string;
}

/** A signed-in staff member, as the routes see them. */
interface Staff {
  accountId: string;
  grants: StaffGrant[];
  principal: Principal;
}

const FLOW_COOKIE = 'console_flow';
/** Grace period of a rotated portal secret: the previous one works for a day while the agency deploys the new one. */
const SECRET_GRACE_SECONDS = 86_400;

/** Events per page of the audit area. */
const AUDIT_PAGE = 25;
/** A cursor: the last `seq` of the previous page. */
const CURSOR = /^\d{1,18}$/;

/** Midnight starting `day` (YYYY-MM-DD) in `timeZone`, or undefined when `day` is not a date. */
export function zonedMidnight(day: string, timeZone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (new Date(utc).toISOString().slice(0, 10) !== day) return undefined;
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(utc));
  const part = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const local = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return new Date(utc - (local - utc));
}

/** The day after `day` (YYYY-MM-DD). */
const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

/** A refusal: rendered as a 403 page by the console's error handler (already audited). */
class Denied extends Error {}

/** Routes for /admin. */
export function consoleRoutes(deps: ConsoleDeps): Router {
  const { host, db, issuer, csrfSecret, acr, master, hasher, pseudonym, loginLimiter, timeZone } = deps;
  const d: ActDeps = { db, master, keys: deps.keys, production: deps.production };
  const router = new Router({ prefix: '/admin' });
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' });
  const csrf = requireCsrf(csrfSecret, byNonce);
  const atLevel2 = (value: unknown) => typeof value === 'string' && (acr.levels[value] ?? 0) >= 2;
  const body = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
  const field = (ctx: Context, k: string, max = 200) => {
    const v = body(ctx)[k];
    return typeof v === 'string' ? v.slice(0, max) : '';
  };
  /** A form field that may repeat (checkboxes). */
  const fields = (ctx: Context, k: string) => {
    const v = body(ctx)[k];
    return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string').slice(0, 20);
  };
  const lang = (ctx: Context): Lang =>
    pickLang(body(ctx).lang ?? ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));
  const staffOf = (ctx: Context) => ctx.state.staff as Staff | undefined;
  const frame = (ctx: Context, current?: Area, path?: string): Frame => ({
    lang: lang(ctx),
    csrf: csrfToken(csrfSecret, formNonce(ctx)),
    areas: areasOf(staffOf(ctx)?.grants ?? []),
    current,
    path,
  });
  const send = (ctx: Context, page: string, status = 200) => {
    ctx.status = status;
    ctx.set('cache-control', 'no-store');
    ctx.type = 'html';
    ctx.body = page;
  };

  const signIn = firstPartySignIn({ host, issuer, clientId: CONSOLE_CLIENT_ID, path: '/admin', cookie: FLOW_COOKIE });
  /** Starts a sign-in at level 2. */
  const startSignIn = (ctx: Context, extra: Record<string, string> = {}) =>
    signIn.start(ctx, {
      acr_values: acr.level2,
      // Essential: the provider asks a level-1 session for the second factor, and refuses a level-1 account.
      claims: JSON.stringify({ id_token: { acr: { essential: true, values: [acr.level2] } } }),
      ui_locales: lang(ctx),
      ...extra,
    });

  /** The page for a session below level 2 (or a sign-in that did not reach it), with a way to sign in again. */
  const needLevel2 = (ctx: Context) => {
    const l = lang(ctx);
    send(
      ctx,
      messageView(
        { ...frame(ctx), areas: [] },
        ct(l, 'needLevel2Title'),
        html`<p>${ct(l, 'needLevel2')}</p><p><a class="button" href="/admin/login?lang=${l}">${ct(l, 'tryAgain')}</a></p>`,
        '/',
      ),
      403,
    );
  };

  /** Records a refused console request. */
  const deny = async (ctx: Context, accountId: string, staff: boolean, reason: string, capability?: Capability) => {
    // Repeated refusals of one caller are answered without an event each (denials.ts).
    const audit = denialToAudit(`console:${accountId}:${capability ?? reason}`);
    if (!audit.audit) return;
    await recordEvent(db, {
      actor: { type: staff ? 'staff' : 'citizen', id: accountId },
      action: 'admin.denied',
      outcome: 'failure',
      reason,
      subject: accountId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: {
        via: 'console',
        path: ctx.path,
        ...(capability ? { capability } : {}),
        ...(audit.suppressed ? { suppressed: audit.suppressed } : {}),
      },
    });
  };

  /**
   * Guard: a signed-in, active account at level 2 that holds a staff role. A GET without one starts a sign-in at
   * level 2; a POST without one is refused. Not staff: a 403 page, audited.
   */
  async function requireStaff(ctx: Context, next: Next) {
    const session = await host.current.Session.get(ctx as never);
    const profile = session.accountId ? await findAccountProfile(db, session.accountId) : undefined;
    const get = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (profile?.status !== 'active') {
      if (get) return startSignIn(ctx);
      throw new AppError('credentials_rejected', 'sign in first');
    }
    if (!atLevel2(session.acr)) return get ? startSignIn(ctx) : needLevel2(ctx);
    const grants = await staffGrants(db, profile.accountId);
    if (!grants.length) {
      await deny(ctx, profile.accountId, false, 'not_staff');
      const l = lang(ctx);
      return send(
        ctx,
        messageView(
          { ...frame(ctx), areas: [] },
          ct(l, 'deniedTitle'),
          html`<p>${ct(l, 'notStaff')}</p><p><a href="/session/end?client_id=${CONSOLE_CLIENT_ID}">${ct(l, 'signOut')}</a></p>`,
          '/',
        ),
        403,
      );
    }
    const staff: Staff = {
      accountId: profile.accountId,
      grants,
      principal: { kind: 'staff', accountId: profile.accountId, grants, ip: ctx.ip, via: 'console' },
    };
    ctx.state.staff = staff;
    await next();
  }

  /** The actor to audit the act as; a refusal is audited and ends the request with a 403 page. */
  async function allow(ctx: Context, capability: Capability, target: Target = {}): Promise<Actor> {
    const staff = staffOf(ctx)!;
    const actor = authorize(staff.principal, capability, target);
    if (actor) return actor;
    await deny(ctx, staff.accountId, true, 'not_permitted', capability);
    throw new Denied(capability);
  }
  /** Whether the staff member may (no audit: to decide what the page offers). */
  const may = (ctx: Context, capability: Capability, target: Target = {}) =>
    !!authorize(staffOf(ctx)!.principal, capability, target);

  // Refusals and the acts' own errors (bad input, nothing found, a conflict) as console pages.
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const l = lang(ctx);
      if (err instanceof Denied)
        return send(ctx, messageView(frame(ctx), ct(l, 'deniedTitle'), html`<p>${ct(l, 'notPermitted')}</p>`), 403);
      if (err instanceof AppError && ['invalid_input', 'not_found', 'conflict'].includes(err.code) && staffOf(ctx))
        return send(
          ctx,
          messageView(frame(ctx), ct(l, 'failed'), html`<p class="error" role="alert">${err.message}</p>`),
          err.status,
        );
      throw err;
    }
  });

  router.get('/console.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = CONSOLE_CSS;
  });

  // A fresh sign-in (the level-2 page's "sign in again").
  router.get('/login', (ctx) => startSignIn(ctx, { prompt: 'login' }));

  /** The end of the sign-in: the code checked as a client would, and redeemed in process (see account.ts). */
  router.get('/callback', async (ctx) => {
    const r = await signIn.finish(ctx);
    if (r.refused) return needLevel2(ctx);
    const { session } = r;
    if (!atLevel2(session.acr)) return needLevel2(ctx);
    ctx.redirect('/admin');
  });

  router.get('/', requireStaff, (ctx) => {
    send(ctx, homeView(frame(ctx, undefined, ctx.url), staffOf(ctx)!.grants));
  });

  // ---- officer: citizens ----

  const PIN = /^\d{12}$/;
  /** The citizen an officer acts on, looked up through the audited `viewAccount`. */
  async function citizen(actor: Actor, pin: string): Promise<CitizenView> {
    const a = await viewAccount(d, actor, pin);
    return {
      pin,
      fullName: a.fullName ?? '',
      birthDate: a.birthDate ?? '',
      level: a.level ?? 0,
      status: a.status ?? '',
      totp: !!a.totp,
    };
  }

  router.get('/citizens', requireStaff, async (ctx) => {
    await allow(ctx, 'accounts.read');
    send(ctx, lookupView(frame(ctx, 'officer', ctx.url)));
  });

  router.post('/citizens/lookup', parseForm, csrf, requireStaff, async (ctx) => {
    const pin = field(ctx, 'pin', 12).trim();
    const f = frame(ctx, 'officer');
    if (!PIN.test(pin)) {
      await allow(ctx, 'accounts.read');
      return send(ctx, lookupView(f, ct(f.lang, 'pin'), pin), 400);
    }
    const actor = await allow(ctx, 'accounts.read', { pin, staff: await isStaffPin(db, pin) });
    try {
      send(ctx, citizenView(f, await citizen(actor, pin)));
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') return send(ctx, lookupView(f, err.message, pin), 404);
      throw err;
    }
  });

  const officerAct = (ctx: Context): OfficerAct => {
    const act = field(ctx, 'act', 30);
    if (!(OFFICER_ACTS as readonly string[]).includes(act)) throw new AppError('invalid_input', 'unknown act');
    return act as OfficerAct;
  };
  const officerPin = (ctx: Context) => {
    const pin = field(ctx, 'pin', 12);
    if (!PIN.test(pin)) throw new AppError('invalid_input', 'personal ID must be 12 digits');
    return pin;
  };

  router.post('/citizens/confirm', parseForm, csrf, requireStaff, async (ctx) => {
    const pin = officerPin(ctx);
    const act = officerAct(ctx);
    const actor = await allow(ctx, 'accounts.act', { pin, staff: await isStaffPin(db, pin) });
    send(ctx, confirmView(frame(ctx, 'officer'), await citizen(actor, pin), act));
  });

  router.post('/citizens/act', parseForm, csrf, requireStaff, async (ctx) => {
    const pin = officerPin(ctx);
    const act = officerAct(ctx);
    const actor = await allow(ctx, 'accounts.act', { pin, staff: await isStaffPin(db, pin) });
    const f = frame(ctx, 'officer');
    const l = f.lang;
    if (field(ctx, 'checked') !== 'yes') return send(ctx, confirmView(f, await citizen(actor, pin), act), 400);
    const title = ct(l, 'doneTitle');
    const back = '/admin/citizens';
    const expiry = (iso: string) => html`<p>${ct(l, 'expiresAt')}: ${vnDateTime(new Date(iso), l)}</p>`;
    switch (act) {
      case 'verify': {
        const r = await verifyInPerson(d, actor, pin);
        return send(
          ctx,
          messageView(
            f,
            title,
            html`<p>${ct(l, 'activationCode')}</p><p class="secret" id="one-time-code">${r.activation_code}</p>${expiry(r.expires_at)}<p>${ct(l, 'activationHow')}</p>`,
            back,
          ),
        );
      }
      case 'reset_password': {
        const r = await passwordResetCode(d, actor, pin);
        return send(
          ctx,
          messageView(
            f,
            title,
            html`<p>${ct(l, 'resetCode')}</p><p class="secret" id="one-time-code">${r.reset_code}</p>${expiry(r.expires_at)}<p>${ct(l, 'resetHow')}</p>`,
            back,
          ),
        );
      }
      case 'suspend':
        await suspend(d, actor, pin);
        return send(ctx, messageView(f, title, html`<p class="ok">${ct(l, 'suspended')}</p>`, back));
      case 'reactivate':
        await reactivate(d, actor, pin);
        return send(ctx, messageView(f, title, html`<p class="ok">${ct(l, 'reactivated')}</p>`, back));
      case 'reset_totp':
        await resetSecondFactor(d, actor, pin);
        return send(ctx, messageView(f, title, html`<p class="ok">${ct(l, 'totpReset')}</p>`, back));
      case 'unlock':
        await unlock(d, actor, pin, pseudonym(pin), (k) => loginLimiter.unlock(k));
        return send(ctx, messageView(f, title, html`<p class="ok">${ct(l, 'unlocked')}</p>`, back));
    }
  });

  // ---- security desk ----

  /** Sandbox portals (waiting for approval), those whose production was requested first. */
  async function pendingPortals() {
    const sandbox = (await listClients(db)).filter((c) => c.environment === 'sandbox' && !c.disabled);
    const list = await Promise.all(
      sandbox.map(async (c) => {
        const req = await productionRequest(db, c.client_id);
        return {
          clientId: c.client_id,
          name: c.client_name,
          agency: c.agency ?? null,
          requestedAt: req?.at ?? null,
          reason: req?.reason ?? null,
        };
      }),
    );
    return list.sort((a, b) => (b.requestedAt?.getTime() ?? 0) - (a.requestedAt?.getTime() ?? 0));
  }

  /** Open change requests (what is still to be granted), newest first; disabled portals wait. */
  async function pendingChanges(): Promise<PendingChange[]> {
    const portals = new Map((await listClients(db)).map((c) => [c.client_id, c]));
    const out: PendingChange[] = [];
    for (const r of await changeRequests(db)) {
      const c = portals.get(r.clientId);
      if (!c || c.disabled) continue;
      const open = openPart(r, c);
      if (!open.scopes.length && !open.environment) continue;
      out.push({
        clientId: c.client_id,
        name: c.client_name,
        agency: c.agency ?? null,
        requestedAt: r.at,
        reason: r.reason,
        ...open,
      });
    }
    return out;
  }

  router.get('/security', requireStaff, async (ctx) => {
    await allow(ctx, 'keys.read');
    send(
      ctx,
      securityView(frame(ctx, 'security', ctx.url), {
        keys: await listKeys(db),
        algs: SIGNING_ALGS,
        lastVerifiedAt: await lastVerifiedAt(db),
        pending: may(ctx, 'clients.read') ? await pendingPortals() : [],
        changes: may(ctx, 'clients.read') ? await pendingChanges() : [],
        mayWrite: may(ctx, 'keys.write'),
        mayApprove: may(ctx, 'clients.approve'),
        mayVerify: may(ctx, 'audit.verify'),
      }),
    );
  });

  const alg = (ctx: Context) => {
    const a = field(ctx, 'alg', 10);
    if (!(SIGNING_ALGS as readonly string[]).includes(a))
      throw new AppError('invalid_input', `algorithm must be one of ${SIGNING_ALGS.join(', ')}`);
    return a;
  };
  const kid = (ctx: Context) => field(ctx, 'kid', 100);
  const keyDone = (ctx: Context, detail?: string) => {
    const f = frame(ctx, 'security');
    send(
      ctx,
      messageView(
        f,
        ct(f.lang, 'doneTitle'),
        html`<p class="ok">${ct(f.lang, 'keyDone')}${detail ? html` <code>${detail}</code>` : ''}</p>`,
        '/admin/security',
      ),
    );
  };

  router.post('/security/keys/rotate', parseForm, csrf, requireStaff, async (ctx) => {
    const r = await rotate(d, await allow(ctx, 'keys.write'), alg(ctx));
    keyDone(ctx, r.staged);
  });
  router.post('/security/keys/generate', parseForm, csrf, requireStaff, async (ctx) => {
    const r = await stageKey(d, await allow(ctx, 'keys.write'), alg(ctx));
    keyDone(ctx, r.kid);
  });
  router.post('/security/keys/activate', parseForm, csrf, requireStaff, async (ctx) => {
    await activate(d, await allow(ctx, 'keys.write'), kid(ctx));
    keyDone(ctx, kid(ctx));
  });
  router.post('/security/keys/retire', parseForm, csrf, requireStaff, async (ctx) => {
    await retire(d, await allow(ctx, 'keys.write'), kid(ctx));
    keyDone(ctx, kid(ctx));
  });
  // Revocation (a compromised key) asks for the key id typed again.
  router.post('/security/keys/revoke', parseForm, csrf, requireStaff, async (ctx) => {
    const actor = await allow(ctx, 'keys.write');
    const typed = field(ctx, 'typed', 100).trim();
    if (typed !== kid(ctx)) {
      const f = frame(ctx, 'security');
      return send(ctx, revokeKeyView(f, kid(ctx), typed ? ct(f.lang, 'kidMismatch') : undefined), typed ? 400 : 200);
    }
    await revoke(d, actor, kid(ctx));
    keyDone(ctx, kid(ctx));
  });
  router.post('/security/cookies/rotate', parseForm, csrf, requireStaff, async (ctx) => {
    const r = await rotateCookies(d, await allow(ctx, 'keys.write'));
    const f = frame(ctx, 'security');
    send(
      ctx,
      messageView(
        f,
        ct(f.lang, 'doneTitle'),
        html`<p class="ok">${ct(f.lang, 'cookiesDone')} ${r.generation}</p>`,
        '/admin/security',
      ),
    );
  });
  router.post('/security/audit/verify', parseForm, csrf, requireStaff, async (ctx) => {
    const r = await verifyAuditChain(d, await allow(ctx, 'audit.verify'));
    const f = frame(ctx, 'security');
    const l = f.lang;
    send(
      ctx,
      messageView(
        f,
        ct(l, 'auditTitle'),
        r.ok
          ? html`<p class="ok" id="chain-result">${ct(l, 'chainOk')} ${r.rows}</p>`
          : html`<p class="error" role="alert" id="chain-result">${ct(l, 'chainBroken')} ${String(r.seq)} (${r.problem})</p>`,
        field(ctx, 'from', 10) === 'audit' ? '/admin/audit/chain' : '/admin/security',
      ),
    );
  });
  router.post('/security/clients/approve', parseForm, csrf, requireStaff, async (ctx) => {
    const clientId = field(ctx, 'client_id', 100);
    const actor = await allow(ctx, 'clients.approve');
    await approveClient(d, actor, clientId, 'production', field(ctx, 'reason', 500));
    const f = frame(ctx, 'security');
    send(
      ctx,
      messageView(
        f,
        ct(f.lang, 'doneTitle'),
        html`<p class="ok">${ct(f.lang, 'approved')} <code>${clientId}</code></p>`,
        '/admin/security',
      ),
    );
  });

  // An agency's request for national_id and/or production: what is still open is granted, with the reason.
  router.post('/security/clients/approve-change', parseForm, csrf, requireStaff, async (ctx) => {
    const clientId = field(ctx, 'client_id', 100);
    const actor = await allow(ctx, 'clients.approve');
    const reason = field(ctx, 'reason', 500);
    const [request] = await changeRequests(db, clientId);
    const open = request ? openPart(request, await getClient(db, clientId)) : undefined;
    if (!open || (!open.scopes.length && !open.environment))
      throw new AppError('conflict', `no open change request for client ${clientId}`);
    if (open.scopes.includes('national_id'))
      await approveClientChange(d, actor, clientId, { allowPersonalId: true }, reason);
    if (open.environment) await approveClient(d, actor, clientId, 'production', reason);
    const f = frame(ctx, 'security');
    send(
      ctx,
      messageView(
        f,
        ct(f.lang, 'doneTitle'),
        html`<p class="ok">${ct(f.lang, 'changeApproved')} <code>${clientId}</code></p>`,
        '/admin/security',
      ),
    );
  });

  // ---- agency area ----

  /** The agency admin's agency (a 403 without one). */
  async function agencyFor(ctx: Context, capability: Capability): Promise<{ agency: string; actor: Actor }> {
    const agency = agencyOf(staffOf(ctx)!.principal);
    if (!agency) {
      await deny(ctx, staffOf(ctx)!.accountId, true, 'no_agency', capability);
      throw new Denied(capability);
    }
    return { agency, actor: await allow(ctx, capability, { agency }) };
  }
  /** A portal of the staff member's agency (a 403 for another agency's portal, audited). */
  async function ownPortal(ctx: Context, capability: Capability): Promise<{ client: ClientView; actor: Actor }> {
    const { agency } = await agencyFor(ctx, capability);
    const client = await getClient(db, field(ctx, 'client_id', 100) || String(ctx.query.client ?? '').slice(0, 100));
    return { client, actor: await allow(ctx, capability, { agency: client.agency === agency ? agency : null }) };
  }

  router.get('/agency', requireStaff, async (ctx) => {
    const { agency } = await agencyFor(ctx, 'clients.read');
    await ensureTestCitizens(db, hasher, master);
    const portals: PortalView[] = await Promise.all(
      (await listClients(db))
        .filter((c) => c.agency === agency)
        .map(async (c) => {
          const [change] = await changeRequests(db, c.client_id);
          const open = change && openPart(change, c);
          return {
            ...c,
            requestedAt: c.environment === 'sandbox' ? ((await productionRequest(db, c.client_id))?.at ?? null) : null,
            changeRequestedAt: open && (open.scopes.length || open.environment) ? change.at : null,
          };
        }),
    );
    send(ctx, agencyView(frame(ctx, 'agency', ctx.url), agency, portals, await listTestCitizens(db)));
  });

  router.get('/agency/register', requireStaff, async (ctx) => {
    await agencyFor(ctx, 'clients.write');
    send(ctx, registerView(frame(ctx, 'agency', ctx.url), EMPTY_REGISTRATION));
  });

  router.post('/agency/register', parseForm, csrf, requireStaff, async (ctx) => {
    const { agency, actor } = await agencyFor(ctx, 'clients.write');
    const input: RegisterInput = {
      name: field(ctx, 'name'),
      redirectUris: field(ctx, 'redirect_uris', 4000),
      postLogoutUri: field(ctx, 'post_logout', 500).trim(),
      method: field(ctx, 'auth_method', 40),
      jwksUri: field(ctx, 'jwks_uri', 500).trim(),
      scopes: fields(ctx, 'scope').filter((s) => (AGENCY_SCOPES as readonly string[]).includes(s)),
      minLevel: field(ctx, 'min_level', 1) === '2' ? '2' : '1',
    };
    const f = frame(ctx, 'agency');
    const method = (AGENCY_METHODS as readonly string[]).includes(input.method)
      ? (input.method as (typeof AGENCY_METHODS)[number])
      : undefined;
    if (!method) return send(ctx, registerView(f, input, ct(f.lang, 'authMethod')), 400);
    // The test citizens exist before the portal's first sign-in.
    await ensureTestCitizens(db, hasher, master);
    try {
      const client = await registerClient(d, actor, {
        name: input.name,
        redirectUris: input.redirectUris.split(/\s+/).filter(Boolean).slice(0, 10),
        postLogoutRedirectUris: input.postLogoutUri ? [input.postLogoutUri] : [],
        tokenEndpointAuthMethod: method,
        ...(method === 'private_key_jwt' && input.jwksUri ? { jwksUri: input.jwksUri } : {}),
        scopes: input.scopes,
        minLevel: input.minLevel === '2' ? 2 : 1,
        agency,
        environment: 'sandbox',
      });
      send(ctx, secretView(f, ct(f.lang, 'registered'), client, client.client_secret, ct(f.lang, 'secretOnce')));
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_input')
        return send(ctx, registerView(f, input, err.message), 400);
      throw err;
    }
  });

  router.post('/agency/rotate', parseForm, csrf, requireStaff, async (ctx) => {
    const { client, actor } = await ownPortal(ctx, 'clients.write');
    const r = await rotateSecret(d, actor, client.client_id, SECRET_GRACE_SECONDS);
    const f = frame(ctx, 'agency');
    const until = r.previous_secret_valid_until ? vnDateTime(new Date(r.previous_secret_valid_until), f.lang) : '';
    send(
      ctx,
      secretView(f, ct(f.lang, 'rotateSecret'), client, r.client_secret, `${ct(f.lang, 'secretRotated')} ${until}.`),
    );
  });

  // "Request production": an audited request with its reason, which the security desk lists.
  router.post('/agency/production', parseForm, csrf, requireStaff, async (ctx) => {
    const { client, actor } = await ownPortal(ctx, 'clients.write');
    const reason = field(ctx, 'reason', 500).trim();
    if (reason.length < 5) throw new AppError('invalid_input', 'reason must be 5 to 500 characters');
    if (client.environment !== 'sandbox') throw new AppError('conflict', `client ${client.client_id} is in production`);
    await recordEvent(db, {
      actor: { type: actor.type, id: actor.id },
      action: 'client.production_requested',
      outcome: 'success',
      clientId: client.client_id,
      ip: actor.ip,
      userAgent: ctx.get('user-agent'),
      reason,
      details: { agency: client.agency, ...actorDetails(actor) },
    });
    const f = frame(ctx, 'agency');
    send(
      ctx,
      messageView(f, ct(f.lang, 'doneTitle'), html`<p class="ok">${ct(f.lang, 'requested')}</p>`, '/admin/agency'),
    );
  });

  router.get('/agency/edit', requireStaff, async (ctx) => {
    const { client } = await ownPortal(ctx, 'clients.write');
    const portal: PortalView = { ...client, requestedAt: null };
    send(ctx, editView(frame(ctx, 'agency', ctx.url), portal, editInputOf(portal)));
  });

  // The agency's own changes, under the registration rules; what only security grants is asked for below.
  router.post('/agency/edit', parseForm, csrf, requireStaff, async (ctx) => {
    const { client, actor } = await ownPortal(ctx, 'clients.write');
    const portal: PortalView = { ...client, requestedAt: null };
    const input: EditInput = {
      name: field(ctx, 'name'),
      redirectUris: field(ctx, 'redirect_uris', 4000),
      postLogoutUris: field(ctx, 'post_logout', 4000),
      backchannelUri: field(ctx, 'backchannel', 500).trim(),
      jwksUri: field(ctx, 'jwks_uri', 500).trim(),
      scopes: fields(ctx, 'scope').filter((s) => (AGENCY_SCOPES as readonly string[]).includes(s)),
      minLevel: field(ctx, 'min_level', 1) === '2' ? '2' : '1',
    };
    const lines = (v: string) => v.split(/\s+/).filter(Boolean).slice(0, 20);
    const same = (a: string[], b: string[]) => JSON.stringify(a) === JSON.stringify(b);
    const had = client.scope.split(' ');
    const scopesNow = had.filter((s) => (AGENCY_SCOPES as readonly string[]).includes(s)).sort();
    const changes: ClientChanges = {};
    if (input.name.trim() !== client.client_name) changes.name = input.name;
    if (!same(lines(input.redirectUris), client.redirect_uris)) changes.redirectUris = lines(input.redirectUris);
    if (!same(lines(input.postLogoutUris), client.post_logout_redirect_uris))
      changes.postLogoutRedirectUris = lines(input.postLogoutUris);
    if (input.backchannelUri !== (client.backchannel_logout_uri ?? ''))
      changes.backchannelLogoutUri = input.backchannelUri || null;
    if (client.token_endpoint_auth_method === 'private_key_jwt' && input.jwksUri && input.jwksUri !== client.jwks_uri)
      changes.jwksUri = input.jwksUri;
    if (!same([...input.scopes].sort(), scopesNow)) {
      // `openid` always (an empty list would mean the defaults); an approved national_id is kept, never added here.
      changes.scopes = ['openid', ...input.scopes];
      changes.allowPersonalId = had.includes('national_id');
    }
    if (Number(input.minLevel) !== client.min_level) changes.minLevel = input.minLevel === '2' ? 2 : 1;
    const f = frame(ctx, 'agency');
    try {
      // Production portals: where codes go, how it authenticates and what it receives are security staff's decision.
      if (!may(ctx, 'clients.approve')) checkChangeWithoutApproval(client, changes);
      await changeClient(d, actor, client.client_id, changes);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'invalid_input' || err.code === 'forbidden'))
        return send(ctx, editView(f, portal, input, err.message), err.status);
      throw err;
    }
    send(ctx, messageView(f, ct(f.lang, 'doneTitle'), html`<p class="ok">${ct(f.lang, 'saved')}</p>`, '/admin/agency'));
  });

  router.post('/agency/disable', parseForm, csrf, requireStaff, async (ctx) => {
    const { client, actor } = await ownPortal(ctx, 'clients.write');
    const disabled = field(ctx, 'disabled', 3) === 'yes';
    await disableClient(d, actor, client.client_id, disabled);
    const f = frame(ctx, 'agency');
    send(
      ctx,
      messageView(
        f,
        ct(f.lang, 'doneTitle'),
        html`<p class="ok">${ct(f.lang, disabled ? 'disabledDone' : 'enabledDone')} <code>${client.client_id}</code></p>`,
        '/admin/agency',
      ),
    );
  });

  // What only security grants (national_id, production), asked for with a reason: an audited request the security
  // desk lists until it is granted. Implicit consent is not offered: a portal's consent mode cannot be changed after
  // registration (clients' ClientChanges has no consent).
  router.post('/agency/request', parseForm, csrf, requireStaff, async (ctx) => {
    const { client, actor } = await ownPortal(ctx, 'clients.write');
    const l = lang(ctx);
    const asks = fields(ctx, 'ask');
    const scopes =
      asks.includes('national_id') && !client.scope.split(' ').includes('national_id') ? ['national_id'] : [];
    const environment = asks.includes('production') && client.environment === 'sandbox' ? 'production' : undefined;
    if (!scopes.length && !environment) throw new AppError('invalid_input', ct(l, 'askNothing'));
    const reason = field(ctx, 'reason', 500).trim();
    if (reason.length < 5) throw new AppError('invalid_input', 'reason must be 5 to 500 characters');
    await recordEvent(db, {
      actor: { type: actor.type, id: actor.id },
      action: 'client.change_requested',
      outcome: 'success',
      clientId: client.client_id,
      ip: actor.ip,
      userAgent: ctx.get('user-agent'),
      reason,
      details: {
        agency: client.agency,
        ...(scopes.length ? { scopes } : {}),
        ...(environment ? { environment } : {}),
        ...actorDetails(actor),
      },
    });
    const f = frame(ctx, 'agency');
    send(
      ctx,
      messageView(f, ct(f.lang, 'doneTitle'), html`<p class="ok">${ct(f.lang, 'requested')}</p>`, '/admin/agency'),
    );
  });

  router.get('/agency/usage', requireStaff, async (ctx) => {
    const { client } = await ownPortal(ctx, 'clients.read');
    const usage = await portalUsage(db, client.client_id, acr.levels, timeZone);
    send(ctx, usageView(frame(ctx, 'agency', ctx.url), client, usage));
  });

  // ---- audit trail (auditors, security): read-only ----

  const queryText = (ctx: Context, k: string) => {
    const v = ctx.query[k];
    return typeof v === 'string' ? v.slice(0, 200).trim() : '';
  };
  const cursorOf = (v: string) => (CURSOR.test(v) ? Number(v) : undefined);

  router.get('/audit', requireStaff, async (ctx) => {
    await allow(ctx, 'audit.read');
    const l = lang(ctx);
    const q: AuditFilters = {
      action: queryText(ctx, 'action'),
      actor: queryText(ctx, 'actor'),
      client: queryText(ctx, 'client'),
      subject: queryText(ctx, 'subject'),
      since: queryText(ctx, 'since'),
      until: queryText(ctx, 'until'),
    };
    let error: string | undefined;
    // A personal ID is searched through the POST form only: one typed here is dropped, never echoed.
    if (PIN.test(q.subject) || PIN.test(q.actor)) {
      error = ct(l, 'pinNotHere');
      if (PIN.test(q.subject)) q.subject = '';
      if (PIN.test(q.actor)) q.actor = '';
    }
    const since = q.since ? zonedMidnight(q.since, timeZone) : undefined;
    const until = q.until ? zonedMidnight(nextDay(q.until), timeZone) : undefined;
    if ((q.since && !since) || (q.until && (!until || !zonedMidnight(q.until, timeZone)))) error = ct(l, 'badDate');
    const filters = Object.fromEntries(Object.entries(q).filter(([, v]) => v)) as Record<string, string>;
    const href = (more: Record<string, string> = {}) =>
      `/admin/audit?${new URLSearchParams({ ...filters, ...more, lang: l }).toString()}`;
    const page = error
      ? { items: [], next_cursor: null }
      : await searchAudit(db, {
          action: q.action || undefined,
          actorId: q.actor || undefined,
          clientId: q.client || undefined,
          subjects: q.subject ? [q.subject] : undefined,
          since,
          until,
          before: cursorOf(queryText(ctx, 'cursor')),
          limit: AUDIT_PAGE,
        });
    send(
      ctx,
      auditSearchView(
        { ...frame(ctx, 'audit'), path: href() },
        q,
        { items: page.items, nextHref: page.next_cursor ? href({ cursor: page.next_cursor }) : null },
        error,
      ),
      error ? 400 : 200,
    );
  });

  // By personal ID, in a POST body: resolved to the account id and the pseudonym (failed logins' subject). The
  // search itself is recorded (a look-up of a person), once per search, not per page.
  router.post('/audit/person', parseForm, csrf, requireStaff, async (ctx) => {
    const actor = await allow(ctx, 'audit.read');
    const pin = field(ctx, 'pin', 12).trim();
    if (!PIN.test(pin)) throw new AppError('invalid_input', 'personal ID must be 12 digits');
    let accountId: string | null = null;
    try {
      accountId = await accountIdForPin(db, pin);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'not_found')) throw err;
    }
    const pseudo = pseudonym(pin);
    const before = cursorOf(field(ctx, 'cursor', 19));
    if (before === undefined)
      await recordEvent(db, {
        actor: { type: actor.type, id: actor.id },
        action: 'audit.searched',
        outcome: 'success',
        subject: accountId ?? pseudo,
        ip: actor.ip,
        userAgent: ctx.get('user-agent'),
        details: { by: 'personal_id', ...actorDetails(actor) },
      });
    const page = await searchAudit(db, {
      subjects: accountId ? [accountId, pseudo] : [pseudo],
      before,
      limit: AUDIT_PAGE,
    });
    send(ctx, auditPersonView(frame(ctx, 'audit'), pin, { accountId, pseudonym: pseudo }, page));
  });

  router.get('/audit/imports', requireStaff, async (ctx) => {
    await allow(ctx, 'registry.read');
    const l = lang(ctx);
    const page = await searchAudit(db, {
      action: 'registry.imported',
      before: cursorOf(queryText(ctx, 'cursor')),
      limit: AUDIT_PAGE,
    });
    const nextHref = page.next_cursor
      ? `/admin/audit/imports?${new URLSearchParams({ cursor: page.next_cursor, lang: l }).toString()}`
      : null;
    send(ctx, importsView(frame(ctx, 'audit', ctx.url), { items: page.items, nextHref }));
  });

  router.get('/audit/chain', requireStaff, async (ctx) => {
    await allow(ctx, 'audit.read');
    const runs = await searchAudit(db, { subjects: ['audit_chain'], action: 'audit.verified', limit: 10 });
    send(
      ctx,
      chainView(frame(ctx, 'audit', ctx.url), {
        lastVerifiedAt: await lastVerifiedAt(db),
        runs: runs.items,
        mayVerify: may(ctx, 'audit.verify'),
      }),
    );
  });

  // ---- admin: staff and roles ----

  router.get('/staff', requireStaff, async (ctx) => {
    await allow(ctx, 'staff.read');
    send(ctx, staffView(frame(ctx, 'admin', ctx.url), await listStaff(db), ROLES, may(ctx, 'staff.write')));
  });

  router.post('/staff/grant', parseForm, csrf, requireStaff, async (ctx) => {
    const actor = await allow(ctx, 'staff.write');
    const provinces = field(ctx, 'provinces', 400)
      .split(/[\s,]+/)
      .filter(Boolean);
    const agency = field(ctx, 'agency', 64).trim();
    await grantStaffRole(d, actor, {
      pin: field(ctx, 'pin', 12).trim(),
      role: field(ctx, 'role', 30),
      ...(provinces.length ? { provinces } : {}),
      ...(agency ? { agency } : {}),
    });
    const f = frame(ctx, 'admin');
    send(
      ctx,
      messageView(f, ct(f.lang, 'doneTitle'), html`<p class="ok">${ct(f.lang, 'granted')}</p>`, '/admin/staff'),
    );
  });

  router.post('/staff/revoke', parseForm, csrf, requireStaff, async (ctx) => {
    const actor = await allow(ctx, 'staff.write');
    await revokeStaffRole(d, actor, field(ctx, 'pin', 12), field(ctx, 'role', 30));
    const f = frame(ctx, 'admin');
    send(
      ctx,
      messageView(f, ct(f.lang, 'doneTitle'), html`<p class="ok">${ct(f.lang, 'revoked')}</p>`, '/admin/staff'),
    );
  });

  return router;
}
