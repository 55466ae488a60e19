/**
 * The staff console's pages: one layout (the citizen pages' header and footer, plus the areas the staff member's roles
 * open and a wider main column), and one template per page. Markup only through the `html` tag (every value
 * escaped); no inline script or style: the console's own stylesheet is served at /admin/console.css.
 */

import type { TestCitizen } from '../seed/sandbox.ts';
import type { StaffEntry, StaffGrant } from '../staff/index.ts';
import { type Html, html, type Lang, langLink, t, vnDate, vnDateTime } from '../ui/index.ts';
import type { AuditEntry } from './audit-search.ts';
import { type ConsoleKey, ct, ctOr } from './console-i18n.ts';
import type { PortalUsage } from './usage.ts';

/** A work area of the console, and where it lives. */
export const AREAS = {
  officer: '/admin/citizens',
  security: '/admin/security',
  agency: '/admin/agency',
  audit: '/admin/audit',
  admin: '/admin/staff',
} as const;
export type Area = keyof typeof AREAS;

/** The areas a staff member's roles open (auditors read the security desk). */
export function areasOf(grants: StaffGrant[]): Area[] {
  const roles = new Set(grants.map((g) => g.role));
  return (Object.keys(AREAS) as Area[]).filter((a) =>
    a === 'officer'
      ? roles.has('officer')
      : a === 'security'
        ? roles.has('security') || roles.has('auditor')
        : a === 'agency'
          ? roles.has('agency_admin')
          : a === 'audit'
            ? roles.has('auditor') || roles.has('security')
            : roles.has('admin'),
  );
}

/** What every console page knows. */
export interface Frame {
  lang: Lang;
  csrf: string;
  /** The areas shown in the navigation (none: a page for someone who is not staff). */
  areas: Area[];
  current?: Area;
  /** The page's GET path, for the language switch (none: the result of a POST). */
  path?: string;
}

/** The console's stylesheet (served at /admin/console.css; the CSP allows only same-origin styles). */
export const CONSOLE_CSS = `/* dinhdanh staff console: the citizen pages' style, wider, with tables that stack on phones. */
body.console main, body.console footer { max-width: 68rem; }
body.console header nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3rem 1.1rem; }
body.console header a { color: #fff; }
body.console header a[aria-current=page] { font-weight: 700; text-decoration-thickness: 3px; }
body.console header .tools { display: flex; gap: 1rem; flex-wrap: wrap; }
table.data { border-collapse: collapse; width: 100%; font-size: 0.92rem; margin: 0.6rem 0; }
table.data th, table.data td { text-align: left; vertical-align: top; padding: 0.4rem 0.5rem; border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }
table.data form { margin: 0; }
table.data button, .actions button { margin-top: 0.2rem; padding: 0.45rem 0.8rem; font-size: 0.92rem; }
@media (max-width: 47.99rem) {
  table.data thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
  table.data, table.data tbody, table.data tr, table.data td { display: block; }
  table.data tr { border: 1px solid #ddd; border-radius: 4px; margin-bottom: 0.8rem; padding: 0.3rem 0.6rem; }
  table.data td { border: 0; padding: 0.25rem 0; }
  table.data td::before { content: attr(data-label); display: block; font-weight: 600; font-size: 0.85rem; color: #444; }
}
textarea, select, input[type=url], input[type=date] { width: 100%; box-sizing: border-box; padding: 0.6rem; font-size: 1rem; border: 1px solid #888; border-radius: 4px; font-family: inherit; background: #fff; color: #1a1a1a; }
fieldset { border: 1px solid #ccc; border-radius: 4px; margin: 1rem 0 0; padding: 0.4rem 0.9rem 0.8rem; }
legend { font-weight: 600; padding: 0 0.3rem; }
fieldset label.check { margin: 0.4rem 0; }
label.check input { flex: none; }
.secret { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.15rem; background: #f1f4f8; padding: 0.6rem 0.8rem; overflow-wrap: anywhere; border-radius: 4px; }
.actions { display: flex; flex-wrap: wrap; gap: 0.2rem 0.6rem; align-items: flex-end; }
.actions form { margin: 0; }
.ok { background: #e7f4ea; border-left: 4px solid #2e7d32; padding: 0.6rem 0.8rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.2rem 1rem 0.9rem; margin: 1rem 0; }
.card h3 { margin: 0.8rem 0 0.3rem; font-size: 1.05rem; }
.split { display: grid; gap: 0 1.5rem; }
@media (min-width: 48rem) { .split { grid-template-columns: 1fr 1fr; } }
ul.plain { list-style: none; padding: 0; margin: 0.2rem 0; }
code { overflow-wrap: anywhere; }
ul.tabs { list-style: none; padding: 0; margin: 0 0 1rem; display: flex; flex-wrap: wrap; gap: 0.3rem 1.2rem; border-bottom: 1px solid #ddd; }
ul.tabs a { display: inline-block; padding: 0.3rem 0; }
ul.tabs a[aria-current=page] { font-weight: 700; text-decoration-thickness: 3px; }
.filters { display: grid; gap: 0 1rem; }
@media (min-width: 48rem) { .filters { grid-template-columns: repeat(3, 1fr); } }
.pager { display: flex; flex-wrap: wrap; gap: 0.5rem 1.2rem; align-items: center; margin: 0.8rem 0; }
.pager form { margin: 0; }
td code.details { font-size: 0.82rem; }
`;

/** A whole console page. */
export function consolePage(f: Frame, title: string, body: Html): string {
  const l = f.lang;
  const nav = f.areas.length
    ? html`<nav aria-label="${ct(l, 'navLabel')}"><ul>${f.areas.map(
        (a) =>
          html`<li><a href="${AREAS[a]}?lang=${l}"${f.current === a ? html` aria-current="page"` : ''}>${ct(l, `area_${a}` as ConsoleKey)}</a></li>`,
      )}</ul></nav>`
    : '';
  const other = l === 'vi' ? 'en' : 'vi';
  return String(html`<!DOCTYPE html>
<html lang="${l}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${ct(l, 'title')}</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="stylesheet" href="/admin/console.css">
</head>
<body class="console">
<header><a class="brand" href="/admin?lang=${l}">${ct(l, 'title')}</a>${nav}<div class="tools">${
    f.path ? html`<a class="lang" href="${langLink(l, f.path)}" lang="${other}">${t(l, 'otherLang')}</a>` : ''
  }${f.areas.length ? html`<a href="/session/end?client_id=dinhdanh-console">${ct(l, 'signOut')}</a>` : ''}</div></header>
<main>
<h1>${title}</h1>
${body}
</main>
<footer><p class="muted">${t(l, 'service')}</p></footer>
</body>
</html>`);
}

/** The hidden fields of every console form. */
export const hidden = (f: Frame, more: Record<string, string> = {}): Html =>
  html`${[['csrf', f.csrf], ['lang', f.lang], ...Object.entries(more)].map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}`;

/** A small form with one button (and hidden fields). */
const button = (f: Frame, action: string, label: string, more: Record<string, string> = {}, secondary = false) =>
  html`<form method="post" action="${action}">${hidden(f, more)}<button type="submit"${secondary ? html` class="secondary"` : ''}>${label}</button></form>`;

const when = (d: Date | string | null | undefined, l: Lang) => (d ? vnDateTime(new Date(d), l) : '');

/** A message page: text, optionally a secret shown once, and a way back. */
export function messageView(f: Frame, title: string, body: Html, back = '/admin'): string {
  return consolePage(f, title, html`${body}<p><a href="${back}?lang=${f.lang}">${ct(f.lang, 'back')}</a></p>`);
}

// ---- home ----

/** The console's first page: the roles held and their areas. */
export function homeView(f: Frame, grants: StaffGrant[]): string {
  const l = f.lang;
  const roles = grants.map(
    (g) =>
      html`<li>${ct(l, `role_${g.role}` as ConsoleKey)}${
        g.role === 'officer' ? html` (${g.provinces?.join(', ') ?? ct(l, 'provincesAll')})` : ''
      }${g.agency ? html` (${g.agency})` : ''}</li>`,
  );
  const areas = f.areas.map(
    (a) => html`<a class="button" href="${AREAS[a]}?lang=${l}">${ct(l, `area_${a}` as ConsoleKey)}</a>`,
  );
  return consolePage(
    f,
    ct(l, 'title'),
    html`<p>${ct(l, 'homeLead')}</p><h2>${ct(l, 'yourRoles')}</h2><ul>${roles}</ul><div class="actions">${areas}</div>`,
  );
}

// ---- officer ----

/** The personal-ID look-up (a POST: the ID never appears in a URL or a request log). */
export function lookupView(f: Frame, error?: string, pin = ''): string {
  const l = f.lang;
  return consolePage(
    f,
    ct(l, 'officerTitle'),
    html`<p>${ct(l, 'officerLead')}</p>${error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : ''}
<form method="post" action="/admin/citizens/lookup">${hidden(f)}
<label for="pin">${ct(l, 'pin')}</label><input type="text" id="pin" name="pin" inputmode="numeric" pattern="[0-9]{12}" maxlength="12" autocomplete="off" required value="${pin}"${error ? html` aria-invalid="true" aria-describedby="form-error"` : ''}>
<button type="submit">${ct(l, 'lookUp')}</button></form>`,
  );
}

/** An account as the officer sees it. */
export interface CitizenView {
  pin: string;
  fullName: string;
  birthDate: string;
  level: number;
  status: string;
  totp: boolean;
}

/** The officer's acts, in the order they are offered. */
export const OFFICER_ACTS = ['verify', 'reset_password', 'suspend', 'reactivate', 'reset_totp', 'unlock'] as const;
export type OfficerAct = (typeof OFFICER_ACTS)[number];

function citizenFacts(l: Lang, c: CitizenView): Html {
  return html`<dl>
<dt>${ct(l, 'name')}</dt><dd>${c.fullName}</dd>
<dt>${ct(l, 'pin')}</dt><dd>${c.pin}</dd>
<dt>${ct(l, 'birthDate')}</dt><dd>${vnDate(c.birthDate)}</dd>
<dt>${ct(l, 'level')}</dt><dd>${ct(l, c.level >= 2 ? 'level2' : 'level1')}</dd>
<dt>${ct(l, 'status')}</dt><dd>${ctOr(l, `status_${c.status}`, c.status)}</dd>
<dt>${ct(l, 'secondFactor')}</dt><dd>${ct(l, c.totp ? 'yes' : 'no')}</dd>
</dl>`;
}

/** Whom the officer acts on, and the acts offered (each goes through a confirmation). */
export function citizenView(f: Frame, c: CitizenView): string {
  const l = f.lang;
  const offered = OFFICER_ACTS.filter((a) =>
    a === 'suspend' ? c.status === 'active' : a === 'reactivate' ? c.status === 'suspended' : true,
  );
  return consolePage(
    f,
    `${ct(l, 'citizenTitle')}: ${c.fullName}`,
    html`${citizenFacts(l, c)}<h2>${ct(l, 'actions')}</h2><div class="actions">${offered.map((a) =>
      button(f, '/admin/citizens/confirm', ct(l, `act_${a}` as ConsoleKey), { pin: c.pin, act: a }, true),
    )}</div><p><a href="/admin/citizens?lang=${l}">${ct(l, 'officerTitle')}</a></p>`,
  );
}

/** The confirmation step: the act, named, and the citizen it is done to. */
export function confirmView(f: Frame, c: CitizenView, act: OfficerAct): string {
  const l = f.lang;
  return consolePage(
    f,
    ct(l, 'confirmTitle'),
    html`<p>${ct(l, 'confirmLead')}</p><p><strong>${ct(l, `act_${act}` as ConsoleKey)}</strong></p>${citizenFacts(l, c)}
<form method="post" action="/admin/citizens/act">${hidden(f, { pin: c.pin, act })}
<label class="check"><input type="checkbox" name="checked" value="yes" required> ${ct(l, 'confirmCheck')}</label>
<button type="submit">${ct(l, 'confirm')}</button></form>
<form method="post" action="/admin/citizens/lookup">${hidden(f, { pin: c.pin })}<button type="submit" class="secondary">${ct(l, 'cancel')}</button></form>`,
  );
}

// ---- security desk ----

/** A signing key as listed. */
export interface KeyView {
  kid: string;
  alg: string;
  state: string;
  autoActivate: boolean;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  revokedAt: Date | null;
}

/** A portal waiting for approval to production. */
export interface PendingPortal {
  clientId: string;
  name: string;
  agency: string | null;
  requestedAt: Date | null;
  reason: string | null;
}

/** An agency's open request (what is still to be granted) for one portal. */
export interface PendingChange {
  clientId: string;
  name: string;
  agency: string | null;
  requestedAt: Date;
  reason: string | null;
  scopes: string[];
  environment: 'production' | null;
}

/** What the security desk shows. */
export interface SecurityView {
  keys: KeyView[];
  algs: readonly string[];
  lastVerifiedAt: Date | null;
  pending: PendingPortal[];
  /** Open requests for what only security grants (national_id, production), newest first. */
  changes: PendingChange[];
  /** keys.write: the forms that change keys. */
  mayWrite: boolean;
  /** clients.approve: the approval forms. */
  mayApprove: boolean;
  /** audit.verify */
  mayVerify: boolean;
}

export function securityView(f: Frame, v: SecurityView): string {
  const l = f.lang;
  const algSelect = (id: string) =>
    html`<label for="${id}">${ct(l, 'alg')}</label><select id="${id}" name="alg">${v.algs.map((a) => html`<option value="${a}">${a}</option>`)}</select>`;
  const keyActs = (k: KeyView) => {
    if (!v.mayWrite) return '';
    const acts: Html[] = [];
    if (k.state === 'staged') acts.push(button(f, '/admin/security/keys/activate', ct(l, 'activate'), { kid: k.kid }));
    if (k.state === 'active')
      acts.push(button(f, '/admin/security/keys/retire', ct(l, 'retire'), { kid: k.kid }, true));
    if (k.state === 'staged' || k.state === 'active' || k.state === 'retired')
      acts.push(button(f, '/admin/security/keys/revoke', ct(l, 'revoke'), { kid: k.kid }, true));
    return html`<div class="actions">${acts}</div>`;
  };
  const rows = v.keys.map(
    (
      k,
    ) => html`<tr><td data-label="${ct(l, 'kid')}"><code>${k.kid}</code></td><td data-label="${ct(l, 'alg')}">${k.alg}</td>
<td data-label="${ct(l, 'state')}">${ctOr(l, `state_${k.state}`, k.state)}</td>
<td data-label="${ct(l, 'dates')}"><ul class="plain"><li>${ct(l, 'created')}: ${when(k.createdAt, l)}</li>${
      k.activatedAt ? html`<li>${ct(l, 'activated')}: ${when(k.activatedAt, l)}</li>` : ''
    }${k.retiredAt ? html`<li>${ct(l, 'retired')}: ${when(k.retiredAt, l)}</li>` : ''}${
      k.revokedAt ? html`<li>${ct(l, 'state_revoked')}: ${when(k.revokedAt, l)}</li>` : ''
    }</ul></td><td data-label="${ct(l, 'actions')}">${keyActs(k)}</td></tr>`,
  );
  const keyForms = v.mayWrite
    ? html`<div class="split"><div class="card"><h3>${ct(l, 'rotate')}</h3><p class="muted">${ct(l, 'rotateLead')}</p>
<form method="post" action="/admin/security/keys/rotate">${hidden(f)}${algSelect('rotate-alg')}<button type="submit">${ct(l, 'rotate')}</button></form></div>
<div class="card"><h3>${ct(l, 'generate')}</h3>
<form method="post" action="/admin/security/keys/generate">${hidden(f)}${algSelect('generate-alg')}<button type="submit" class="secondary">${ct(l, 'generate')}</button></form></div></div>
<h2>${ct(l, 'cookiesTitle')}</h2><p>${ct(l, 'cookiesLead')}</p>${button(f, '/admin/security/cookies/rotate', ct(l, 'rotateCookies'), {}, true)}`
    : '';
  const pending = v.pending.map(
    (p) => html`<div class="card"><h3>${p.name}</h3><dl>
<dt>${ct(l, 'clientId')}</dt><dd><code>${p.clientId}</code></dd>
<dt>${ct(l, 'agency')}</dt><dd>${p.agency ?? ''}</dd>
<dt>${ct(l, 'requestedAt')}</dt><dd>${p.requestedAt ? when(p.requestedAt, l) : ct(l, 'notRequested')}</dd>
${p.reason ? html`<dt>${ct(l, 'reason')}</dt><dd>${p.reason}</dd>` : ''}</dl>${
      v.mayApprove
        ? html`<form method="post" action="/admin/security/clients/approve">${hidden(f, { client_id: p.clientId })}
<label for="reason-${p.clientId}">${ct(l, 'reason')}</label><textarea id="reason-${p.clientId}" name="reason" rows="2" minlength="5" maxlength="500" required></textarea>
<button type="submit">${ct(l, 'approve')}</button></form>`
        : ''
    }</div>`,
  );
  const changes = v.changes.map(
    (c) => html`<div class="card"><h3>${c.name}</h3><dl>
<dt>${ct(l, 'clientId')}</dt><dd><code>${c.clientId}</code></dd>
<dt>${ct(l, 'agency')}</dt><dd>${c.agency ?? ''}</dd>
<dt>${ct(l, 'askWhat')}</dt><dd><ul class="plain">${c.scopes.map((s) => html`<li><code>${s}</code></li>`)}${
      c.environment ? html`<li>${ct(l, 'askProduction')}</li>` : ''
    }</ul></dd>
<dt>${ct(l, 'requestedAt')}</dt><dd>${when(c.requestedAt, l)}</dd>
${c.reason ? html`<dt>${ct(l, 'reason')}</dt><dd>${c.reason}</dd>` : ''}</dl>${
      v.mayApprove
        ? html`<form method="post" action="/admin/security/clients/approve-change">${hidden(f, { client_id: c.clientId })}
<label for="change-reason-${c.clientId}">${ct(l, 'approveReason')}</label><textarea id="change-reason-${c.clientId}" name="reason" rows="2" minlength="5" maxlength="500" required></textarea>
<button type="submit">${ct(l, 'approveChange')}</button></form>`
        : ''
    }</div>`,
  );
  return consolePage(
    f,
    ct(l, 'securityTitle'),
    html`<h2>${ct(l, 'keysTitle')}</h2>
<table class="data"><thead><tr><th scope="col">${ct(l, 'kid')}</th><th scope="col">${ct(l, 'alg')}</th><th scope="col">${ct(l, 'state')}</th><th scope="col">${ct(l, 'dates')}</th><th scope="col">${ct(l, 'actions')}</th></tr></thead><tbody>${rows}</tbody></table>
${keyForms}
<h2>${ct(l, 'auditTitle')}</h2><p>${ct(l, 'lastVerified')}: ${v.lastVerifiedAt ? when(v.lastVerifiedAt, l) : ct(l, 'never')}</p>${
      v.mayVerify ? button(f, '/admin/security/audit/verify', ct(l, 'verifyNow'), {}, true) : ''
    }
<h2>${ct(l, 'changesTitle')}</h2>${changes.length ? changes : html`<p>${ct(l, 'changesNone')}</p>`}
<h2>${ct(l, 'pendingTitle')}</h2>${pending.length ? pending : html`<p>${ct(l, 'pendingNone')}</p>`}`,
  );
}

/** Revoking a key asks for its id typed again. */
export function revokeKeyView(f: Frame, kid: string, error?: string): string {
  const l = f.lang;
  return consolePage(
    f,
    ct(l, 'revokeTitle'),
    html`<p>${ct(l, 'revokeLead')}</p><p><code>${kid}</code></p>${
      error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : ''
    }<form method="post" action="/admin/security/keys/revoke">${hidden(f, { kid })}
<label for="typed">${ct(l, 'typeKid')}</label><input type="text" id="typed" name="typed" autocomplete="off" required${
      error ? html` aria-invalid="true" aria-describedby="form-error"` : ''
    }>
<button type="submit">${ct(l, 'revoke')}</button></form><p><a href="/admin/security?lang=${l}">${ct(l, 'cancel')}</a></p>`,
  );
}

// ---- agency area ----

/** A portal as its agency sees it. */
export interface PortalView {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  token_endpoint_auth_method: string;
  scope: string;
  min_level: number;
  jwks_uri?: string;
  jwks_kids?: string[];
  environment: 'sandbox' | 'production';
  disabled?: boolean;
  /** When production was last requested (sandbox portals). */
  requestedAt: Date | null;
  backchannel_logout_uri?: string;
  /** An open change request (national_id, production): when it was sent. */
  changeRequestedAt?: Date | null;
}

const list = (items: string[], l: Lang) =>
  items.length ? html`<ul class="plain">${items.map((u) => html`<li><code>${u}</code></li>`)}</ul>` : ct(l, 'none');

export function agencyView(f: Frame, agency: string, portals: PortalView[], testCitizens: TestCitizen[]): string {
  const l = f.lang;
  const cards = portals.map(
    (p) => html`<div class="card"><h3>${p.client_name}</h3><dl>
<dt>${ct(l, 'clientId')}</dt><dd><code>${p.client_id}</code></dd>
<dt>${ct(l, 'environment')}</dt><dd>${ct(l, `env_${p.environment}`)}${p.disabled ? html` (${ct(l, 'disabled')})` : ''}</dd>
<dt>${ct(l, 'redirectUris')}</dt><dd>${list(p.redirect_uris, l)}</dd>
<dt>${ct(l, 'logoutUris')}</dt><dd>${list(p.post_logout_redirect_uris, l)}</dd>
<dt>${ct(l, 'authMethod')}</dt><dd><code>${p.token_endpoint_auth_method}</code></dd>
<dt>${ct(l, 'keys')}</dt><dd>${
      p.jwks_uri ? html`<code>${p.jwks_uri}</code>` : p.jwks_kids?.length ? list(p.jwks_kids, l) : ct(l, 'none')
    }</dd>
<dt>${ct(l, 'scopes')}</dt><dd><code>${p.scope}</code></dd>
<dt>${ct(l, 'minLevel')}</dt><dd>${ct(l, p.min_level >= 2 ? 'level2' : 'level1')}</dd>
${p.environment === 'sandbox' && p.requestedAt ? html`<dt>${ct(l, 'requestedAt')}</dt><dd>${when(p.requestedAt, l)}</dd>` : ''}
${p.changeRequestedAt ? html`<dt>${ct(l, 'openRequest')}</dt><dd>${when(p.changeRequestedAt, l)}</dd>` : ''}
</dl><div class="actions"><a class="button secondary" href="/admin/agency/edit?client=${encodeURIComponent(p.client_id)}&amp;lang=${l}">${ct(l, 'edit')}</a><a class="button secondary" href="/admin/agency/usage?client=${encodeURIComponent(p.client_id)}&amp;lang=${l}">${ct(l, 'usage')}</a>${
      p.token_endpoint_auth_method.startsWith('client_secret')
        ? button(f, '/admin/agency/rotate', ct(l, 'rotateSecret'), { client_id: p.client_id }, true)
        : ''
    }${button(f, '/admin/agency/disable', ct(l, p.disabled ? 'enable' : 'disable'), { client_id: p.client_id, disabled: p.disabled ? 'no' : 'yes' }, true)}</div>${
      p.environment === 'sandbox'
        ? html`<form method="post" action="/admin/agency/production">${hidden(f, { client_id: p.client_id })}
<label for="why-${p.client_id}">${ct(l, 'requestReason')}</label><textarea id="why-${p.client_id}" name="reason" rows="2" minlength="5" maxlength="500" required></textarea>
<button type="submit">${ct(l, 'requestProduction')}</button></form>`
        : ''
    }</div>`,
  );
  const citizens = testCitizens.map(
    (
      c,
    ) => html`<tr><td data-label="${ct(l, 'name')}">${c.full_name}</td><td data-label="${ct(l, 'pinShort')}"><code>${c.personal_id}</code></td>
<td data-label="${ct(l, 'level')}">${ct(l, c.level >= 2 ? 'level2' : 'level1')}</td><td data-label="${ct(l, 'password')}"><code>${c.password}</code></td>
<td data-label="${ct(l, 'totpSecret')}">${c.totp_secret ? html`<code>${c.totp_secret}</code>` : ct(l, 'none')}</td></tr>`,
  );
  return consolePage(
    f,
    ct(l, 'agencyTitle'),
    html`<p>${ct(l, 'agency')}: <strong>${agency}</strong></p><p>${ct(l, 'agencyLead')}</p>
<p><a class="button" href="/admin/agency/register?lang=${l}">${ct(l, 'register')}</a></p>
${cards.length ? cards : html`<p>${ct(l, 'portalsNone')}</p>`}
<h2>${ct(l, 'testCitizens')}</h2><p>${ct(l, 'testLead')}</p>
<table class="data"><thead><tr><th scope="col">${ct(l, 'name')}</th><th scope="col">${ct(l, 'pinShort')}</th><th scope="col">${ct(l, 'level')}</th><th scope="col">${ct(l, 'password')}</th><th scope="col">${ct(l, 'totpSecret')}</th></tr></thead><tbody>${citizens}</tbody></table>`,
  );
}

/** The scopes an agency may ask for itself (national_id and implicit consent need security approval). */
export const AGENCY_SCOPES = ['profile', 'address', 'email', 'phone', 'offline_access'] as const;
/** The client authentication methods offered. */
export const AGENCY_METHODS = ['client_secret_basic', 'none', 'private_key_jwt'] as const;

/** What the registration form was filled with (shown again with an error). */
export interface RegisterInput {
  name: string;
  redirectUris: string;
  postLogoutUri: string;
  method: string;
  jwksUri: string;
  scopes: string[];
  minLevel: string;
}

export const EMPTY_REGISTRATION: RegisterInput = {
  name: '',
  redirectUris: '',
  postLogoutUri: '',
  method: 'client_secret_basic',
  jwksUri: '',
  scopes: ['profile'],
  minLevel: '1',
};

export function registerView(f: Frame, v: RegisterInput, error?: string): string {
  const l = f.lang;
  return consolePage(
    f,
    ct(l, 'register'),
    html`<p>${ct(l, 'agencyLead')}</p>${error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : ''}
<form method="post" action="/admin/agency/register">${hidden(f)}
<label for="name">${ct(l, 'portalName')}</label><input type="text" id="name" name="name" maxlength="200" required value="${v.name}">
<label for="redirect_uris">${ct(l, 'redirectUris')}</label><textarea id="redirect_uris" name="redirect_uris" rows="3" required aria-describedby="redirect-help">${v.redirectUris}</textarea>
<p class="muted" id="redirect-help">${ct(l, 'redirectHelp')}</p>
<label for="post_logout">${ct(l, 'logoutUri')}</label><input type="url" id="post_logout" name="post_logout" maxlength="500" value="${v.postLogoutUri}">
<fieldset><legend>${ct(l, 'authMethod')}</legend>${AGENCY_METHODS.map(
      (m) =>
        html`<label class="check"><input type="radio" name="auth_method" value="${m}"${v.method === m ? html` checked` : ''}> ${ct(l, `method_${m}`)}</label>`,
    )}</fieldset>
<label for="jwks_uri">${ct(l, 'jwksUri')}</label><input type="url" id="jwks_uri" name="jwks_uri" maxlength="500" value="${v.jwksUri}">
<fieldset aria-describedby="scopes-help"><legend>${ct(l, 'scopes')}</legend>${AGENCY_SCOPES.map(
      (s) =>
        html`<label class="check"><input type="checkbox" name="scope" value="${s}"${v.scopes.includes(s) ? html` checked` : ''}> <span><code>${s}</code>: ${t(l, `scope_${s}`)}</span></label>`,
    )}<p class="muted" id="scopes-help">${ct(l, 'scopesHelp')}</p></fieldset>
<fieldset><legend>${ct(l, 'minLevel')}</legend>${['1', '2'].map(
      (m) =>
        html`<label class="check"><input type="radio" name="min_level" value="${m}"${v.minLevel === m ? html` checked` : ''}> ${ct(l, m === '2' ? 'level2' : 'level1')}</label>`,
    )}</fieldset>
<button type="submit">${ct(l, 'register')}</button></form><p><a href="/admin/agency?lang=${l}">${ct(l, 'cancel')}</a></p>`,
  );
}

/** A portal just registered, or its secret just rotated: the secret, shown once. */
export function secretView(
  f: Frame,
  title: string,
  client: { client_id: string; client_name: string },
  secret: string | undefined,
  lead: string,
): string {
  const l = f.lang;
  return messageView(
    f,
    title,
    html`<dl><dt>${ct(l, 'portalName')}</dt><dd>${client.client_name}</dd><dt>${ct(l, 'clientId')}</dt><dd><code class="secret">${client.client_id}</code></dd></dl>${
      secret ? html`<p>${lead}</p><p class="secret" id="client-secret">${secret}</p>` : ''
    }`,
    '/admin/agency',
  );
}

/** A portal's usage over the last 14 days. */
export function usageView(f: Frame, portal: { client_id: string; client_name: string }, u: PortalUsage): string {
  const l = f.lang;
  const rows = [...u.days].reverse().map(
    (
      d,
    ) => html`<tr><td data-label="${ct(l, 'day')}">${vnDate(d.day)}</td><td data-label="${ct(l, 'loginsL1')}">${d.logins[1]}</td>
<td data-label="${ct(l, 'loginsL2')}">${d.logins[2] + d.logins[3]}</td><td data-label="${ct(l, 'failedLogins')}">${d.failedLogins}</td>
<td data-label="${ct(l, 'consents')}">${d.consents}</td><td data-label="${ct(l, 'bcFailures')}">${d.backchannelFailures}</td></tr>`,
  );
  return consolePage(
    f,
    `${ct(l, 'usageTitle')}: ${portal.client_name}`,
    html`<p>${ct(l, 'clientId')}: <code>${portal.client_id}</code></p><p>${ct(l, 'activeGrants')}: <strong id="active-grants">${u.activeGrants}</strong></p>
<table class="data" id="usage"><thead><tr><th scope="col">${ct(l, 'day')}</th><th scope="col">${ct(l, 'loginsL1')}</th><th scope="col">${ct(l, 'loginsL2')}</th><th scope="col">${ct(l, 'failedLogins')}</th><th scope="col">${ct(l, 'consents')}</th><th scope="col">${ct(l, 'bcFailures')}</th></tr></thead><tbody>${rows}</tbody></table>
<p><a href="/admin/agency?lang=${l}">${ct(l, 'back')}</a></p>`,
  );
}

// ---- admin: staff and roles ----

export function staffView(f: Frame, staff: StaffEntry[], roles: readonly string[], mayWrite: boolean): string {
  const l = f.lang;
  const rows = staff.map(
    (
      s,
    ) => html`<tr><td data-label="${ct(l, 'name')}">${s.full_name}</td><td data-label="${ct(l, 'pinShort')}"><code>${s.personal_id}</code></td>
<td data-label="${ct(l, 'role')}">${ct(l, `role_${s.role}` as ConsoleKey)}</td>
<td data-label="${ct(l, 'scope')}">${s.role === 'officer' ? (s.provinces?.join(', ') ?? ct(l, 'provincesAll')) : (s.agency ?? '')}</td>
<td data-label="${ct(l, 'grantedBy')}">${s.granted_by}<br><span class="muted">${when(s.granted_at, l)}</span></td>
<td data-label="${ct(l, 'actions')}">${mayWrite ? button(f, '/admin/staff/revoke', ct(l, 'revokeRole'), { pin: s.personal_id, role: s.role }, true) : ''}</td></tr>`,
  );
  return consolePage(
    f,
    ct(l, 'staffTitle'),
    html`<table class="data"><thead><tr><th scope="col">${ct(l, 'name')}</th><th scope="col">${ct(l, 'pinShort')}</th><th scope="col">${ct(l, 'role')}</th><th scope="col">${ct(l, 'scope')}</th><th scope="col">${ct(l, 'grantedBy')}</th><th scope="col">${ct(l, 'actions')}</th></tr></thead><tbody>${rows}</tbody></table>${
      mayWrite
        ? html`<h2>${ct(l, 'grant')}</h2><form method="post" action="/admin/staff/grant">${hidden(f)}
<label for="grant-pin">${ct(l, 'pin')}</label><input type="text" id="grant-pin" name="pin" inputmode="numeric" pattern="[0-9]{12}" maxlength="12" autocomplete="off" required>
<label for="grant-role">${ct(l, 'role')}</label><select id="grant-role" name="role">${roles.map(
            (r) => html`<option value="${r}">${ct(l, `role_${r}` as ConsoleKey)}</option>`,
          )}</select>
<label for="grant-provinces">${ct(l, 'provinces')}</label><input type="text" id="grant-provinces" name="provinces" maxlength="400" autocomplete="off">
<label for="grant-agency">${ct(l, 'agencyCode')}</label><input type="text" id="grant-agency" name="agency" maxlength="64" autocomplete="off">
<button type="submit">${ct(l, 'grant')}</button></form>`
        : ''
    }`,
  );
}

// ---- agency area: editing a portal, asking security ----

/** What the edit form was filled with (shown again with an error). */
export interface EditInput {
  name: string;
  /** One per line. */
  redirectUris: string;
  /** One per line. */
  postLogoutUris: string;
  backchannelUri: string;
  jwksUri: string;
  scopes: string[];
  minLevel: '1' | '2';
}

/** The edit form's values for a portal as it is. */
export const editInputOf = (p: PortalView): EditInput => ({
  name: p.client_name,
  redirectUris: p.redirect_uris.join('\n'),
  postLogoutUris: p.post_logout_redirect_uris.join('\n'),
  backchannelUri: p.backchannel_logout_uri ?? '',
  jwksUri: p.jwks_uri ?? '',
  scopes: p.scope.split(' ').filter((s) => (AGENCY_SCOPES as readonly string[]).includes(s)),
  minLevel: p.min_level >= 2 ? '2' : '1',
});

/** Editing a portal of the agency (the registration rules apply), and asking security for what only it grants. */
export function editView(f: Frame, p: PortalView, v: EditInput, error?: string): string {
  const l = f.lang;
  const scopes = p.scope.split(' ');
  const privateKey = p.token_endpoint_auth_method === 'private_key_jwt';
  const asks = [
    ...(scopes.includes('national_id') ? [] : [['national_id', ct(l, 'askNationalId')]]),
    ...(p.environment === 'sandbox' ? [['production', ct(l, 'askProduction')]] : []),
  ];
  return consolePage(
    f,
    `${ct(l, 'editTitle')}: ${p.client_name}`,
    html`<p>${ct(l, 'clientId')}: <code>${p.client_id}</code></p>${
      error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : ''
    }
<form method="post" action="/admin/agency/edit">${hidden(f, { client_id: p.client_id })}
<label for="name">${ct(l, 'portalName')}</label><input type="text" id="name" name="name" maxlength="200" required value="${v.name}">
<label for="redirect_uris">${ct(l, 'redirectUris')}</label><textarea id="redirect_uris" name="redirect_uris" rows="3" required aria-describedby="redirect-help">${v.redirectUris}</textarea>
<p class="muted" id="redirect-help">${ct(l, 'redirectHelp')}</p>
<label for="post_logout">${ct(l, 'logoutUris')}</label><textarea id="post_logout" name="post_logout" rows="2" aria-describedby="logout-help">${v.postLogoutUris}</textarea>
<p class="muted" id="logout-help">${ct(l, 'logoutUrisHelp')}</p>
<label for="backchannel">${ct(l, 'backchannelUri')}</label><input type="url" id="backchannel" name="backchannel" maxlength="500" value="${v.backchannelUri}">
${privateKey ? html`<label for="jwks_uri">${ct(l, 'jwksUri')}</label><input type="url" id="jwks_uri" name="jwks_uri" maxlength="500" value="${v.jwksUri}">` : ''}
<fieldset aria-describedby="scopes-help"><legend>${ct(l, 'scopes')}</legend>${AGENCY_SCOPES.map(
      (s) =>
        html`<label class="check"><input type="checkbox" name="scope" value="${s}"${v.scopes.includes(s) ? html` checked` : ''}> <span><code>${s}</code>: ${t(l, `scope_${s}`)}</span></label>`,
    )}<p class="muted" id="scopes-help">${scopes.includes('national_id') ? ct(l, 'nationalIdKept') : ct(l, 'scopesHelp')}</p></fieldset>
<fieldset><legend>${ct(l, 'minLevel')}</legend>${(['1', '2'] as const).map(
      (m) =>
        html`<label class="check"><input type="radio" name="min_level" value="${m}"${v.minLevel === m ? html` checked` : ''}> ${ct(l, m === '2' ? 'level2' : 'level1')}</label>`,
    )}</fieldset>
<button type="submit">${ct(l, 'save')}</button></form>
${
  asks.length
    ? html`<h2>${ct(l, 'askTitle')}</h2><p>${ct(l, 'askLead')}</p>
<form method="post" action="/admin/agency/request">${hidden(f, { client_id: p.client_id })}
<fieldset><legend>${ct(l, 'askWhat')}</legend>${asks.map(
        ([value, label]) =>
          html`<label class="check"><input type="checkbox" name="ask" value="${value!}"> ${label!}</label>`,
      )}</fieldset>
<label for="ask-reason">${ct(l, 'requestReason')}</label><textarea id="ask-reason" name="reason" rows="2" minlength="5" maxlength="500" required></textarea>
<button type="submit" class="secondary">${ct(l, 'sendRequest')}</button></form>`
    : ''
}
<p><a href="/admin/agency?lang=${l}">${ct(l, 'cancel')}</a></p>`,
  );
}

// ---- audit trail (auditors, security) ----

/** The audit area's pages. */
const AUDIT_TABS = { search: '/admin/audit', imports: '/admin/audit/imports', chain: '/admin/audit/chain' } as const;

function auditTabs(l: Lang, current: keyof typeof AUDIT_TABS): Html {
  return html`<nav aria-label="${ct(l, 'auditTabs')}"><ul class="tabs">${(
    Object.keys(AUDIT_TABS) as (keyof typeof AUDIT_TABS)[]
  ).map(
    (k) =>
      html`<li><a href="${AUDIT_TABS[k]}?lang=${l}"${k === current ? html` aria-current="page"` : ''}>${ct(l, `tab_${k}`)}</a></li>`,
  )}</ul></nav>`;
}

/** Events as a table, newest first. */
function eventsTable(l: Lang, items: AuditEntry[]): Html {
  if (!items.length) return html`<p id="no-events">${ct(l, 'noEvents')}</p>`;
  const rows = items.map(
    (
      e,
    ) => html`<tr data-seq="${String(e.seq)}"><td data-label="${ct(l, 'at')}">${when(e.at, l)}<br><span class="muted">#${String(e.seq)}</span></td>
<td data-label="${ct(l, 'action')}"><code>${e.action}</code><br>${ctOr(l, `outcome_${e.outcome}`, e.outcome)}${e.reason ? html`<br><span class="muted">${e.reason}</span>` : ''}</td>
<td data-label="${ct(l, 'actor')}">${e.actor_type}${e.actor_id ? html`<br><code>${e.actor_id}</code>` : ''}${e.ip ? html`<br>IP ${e.ip}` : ''}</td>
<td data-label="${ct(l, 'subject')}">${e.subject ? html`<code>${e.subject}</code>` : ''}${e.client_id ? html`<br>${ct(l, 'clientId')}: <code>${e.client_id}</code>` : ''}</td>
<td data-label="${ct(l, 'details')}"><code class="details">${Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</code></td></tr>`,
  );
  return html`<table class="data" id="events"><thead><tr><th scope="col">${ct(l, 'at')}</th><th scope="col">${ct(l, 'action')}</th><th scope="col">${ct(l, 'actor')}</th><th scope="col">${ct(l, 'subject')}</th><th scope="col">${ct(l, 'details')}</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** A filter that goes in a URL refuses what looks like a personal ID (12 digits); the server drops one too. */
const NOT_A_PIN = '(?!\\d{12}$).*';

/** The audit search's filters, as typed (GET parameters; never a personal ID). */
export interface AuditFilters {
  action: string;
  actor: string;
  client: string;
  subject: string;
  since: string;
  until: string;
}

/** The search form, the page of events, and a "next page" link carrying the cursor. */
export function auditSearchView(
  f: Frame,
  q: AuditFilters,
  page: { items: AuditEntry[]; nextHref: string | null },
  error?: string,
): string {
  const l = f.lang;
  const input = (id: keyof AuditFilters, label: string, type = 'text', extra: Html | '' = '') =>
    html`<div><label for="f-${id}">${label}</label><input type="${type}" id="f-${id}" name="${id}" value="${q[id]}" maxlength="200" autocomplete="off"${extra}></div>`;
  return consolePage(
    f,
    ct(l, 'auditSearchTitle'),
    html`${auditTabs(l, 'search')}<p>${ct(l, 'auditSearchLead')}</p>${
      error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : ''
    }
<form method="get" action="/admin/audit"><input type="hidden" name="lang" value="${l}"><fieldset><legend>${ct(l, 'filters')}</legend><div class="filters">
${input('action', ct(l, 'filterAction'))}${input('actor', ct(l, 'filterActor'))}${input('client', ct(l, 'clientId'))}
${input('subject', ct(l, 'filterSubject'), 'text', html` pattern="${NOT_A_PIN}" title="${ct(l, 'pinNotHere')}"`)}${input('since', ct(l, 'since'), 'date')}${input('until', ct(l, 'until'), 'date')}
</div><button type="submit">${ct(l, 'search')}</button></fieldset></form>
<h2>${ct(l, 'results')}</h2>${eventsTable(l, page.items)}${
      page.nextHref ? html`<p class="pager"><a id="next-page" href="${page.nextHref}">${ct(l, 'nextPage')}</a></p>` : ''
    }
<h2>${ct(l, 'byPinTitle')}</h2><p>${ct(l, 'byPinLead')}</p>
<form method="post" action="/admin/audit/person">${hidden(f)}
<label for="audit-pin">${ct(l, 'pin')}</label><input type="text" id="audit-pin" name="pin" inputmode="numeric" pattern="[0-9]{12}" maxlength="12" autocomplete="off" required>
<button type="submit" class="secondary">${ct(l, 'search')}</button></form>`,
  );
}

/** A citizen's events, found by personal ID (POSTed): the ids searched, the page, and a POST form for the next one. */
export function auditPersonView(
  f: Frame,
  pin: string,
  who: { accountId: string | null; pseudonym: string },
  page: { items: AuditEntry[]; next_cursor: string | null },
): string {
  const l = f.lang;
  return consolePage(
    f,
    ct(l, 'byPinTitle'),
    html`${auditTabs(l, 'search')}<dl>
<dt>${ct(l, 'pin')}</dt><dd>${pin}</dd>
<dt>${ct(l, 'accountIdLabel')}</dt><dd>${who.accountId ? html`<code>${who.accountId}</code>` : ct(l, 'noAccount')}</dd>
<dt>${ct(l, 'pseudonymLabel')}</dt><dd><code>${who.pseudonym}</code></dd></dl>
<h2>${ct(l, 'results')}</h2>${eventsTable(l, page.items)}${
      page.next_cursor
        ? html`<div class="pager"><form method="post" action="/admin/audit/person">${hidden(f, { pin, cursor: page.next_cursor })}<button type="submit" class="secondary" id="next-page">${ct(l, 'nextPage')}</button></form></div>`
        : ''
    }<p><a href="/admin/audit?lang=${l}">${ct(l, 'back')}</a></p>`,
  );
}

/** Registry import runs, newest first (`registry.imported` events). */
export function importsView(f: Frame, page: { items: AuditEntry[]; nextHref: string | null }): string {
  const l = f.lang;
  const n = (d: Record<string, unknown>, k: string) => (typeof d[k] === 'number' ? String(d[k]) : '–');
  const rows = page.items.map(
    (e) => html`<tr><td data-label="${ct(l, 'at')}">${when(e.at, l)}</td>
<td data-label="${ct(l, 'outcome')}">${ctOr(l, `outcome_${e.outcome}`, e.outcome)}${e.reason ? html`<br><span class="muted">${e.reason}</span>` : ''}</td>
<td data-label="${ct(l, 'file')}"><code>${String(e.details.file ?? '')}</code> ${String(e.details.format ?? '')}</td>
<td data-label="${ct(l, 'counts')}"><ul class="plain"><li>${n(e.details, 'inserted')} ${ct(l, 'inserted')}</li><li>${n(e.details, 'updated')} ${ct(l, 'updatedCount')}</li><li>${n(e.details, 'rejected')} ${ct(l, 'rejected')}</li><li>${n(e.details, 'disabledAccounts')} ${ct(l, 'disabledAccounts')}</li></ul></td>
<td data-label="${ct(l, 'actor')}">${e.actor_id ?? e.actor_type}</td></tr>`,
  );
  return consolePage(
    f,
    ct(l, 'importsTitle'),
    html`${auditTabs(l, 'imports')}${
      rows.length
        ? html`<table class="data" id="imports"><thead><tr><th scope="col">${ct(l, 'at')}</th><th scope="col">${ct(l, 'outcome')}</th><th scope="col">${ct(l, 'file')}</th><th scope="col">${ct(l, 'counts')}</th><th scope="col">${ct(l, 'actor')}</th></tr></thead><tbody>${rows}</tbody></table>`
        : html`<p>${ct(l, 'noImports')}</p>`
    }${page.nextHref ? html`<p class="pager"><a id="next-page" href="${page.nextHref}">${ct(l, 'nextPage')}</a></p>` : ''}`,
  );
}

/** The audit chain: the outcome of the last verification, when it was last found intact, the recent runs. */
export function chainView(
  f: Frame,
  v: { lastVerifiedAt: Date | null; runs: AuditEntry[]; mayVerify: boolean },
): string {
  const l = f.lang;
  const last = v.runs[0];
  const status = !last
    ? html`<p id="chain-status">${ct(l, 'chainUnknown')}</p>`
    : last.outcome === 'success'
      ? html`<p class="ok" id="chain-status">${ct(l, 'chainIntact')} (${when(last.at, l)})</p>`
      : html`<p class="error" role="alert" id="chain-status">${ct(l, 'chainBrokenAt')} (${when(last.at, l)}): ${last.reason ?? ''}</p>`;
  const rows = v.runs.map(
    (
      e,
    ) => html`<tr><td data-label="${ct(l, 'at')}">${when(e.at, l)}</td><td data-label="${ct(l, 'outcome')}">${ctOr(l, `outcome_${e.outcome}`, e.outcome)}${e.reason ? html` (${e.reason})` : ''}</td>
<td data-label="${ct(l, 'rowsChecked')}">${String(e.details.rows ?? '')}</td><td data-label="${ct(l, 'actor')}">${e.actor_id ?? e.actor_type}</td></tr>`,
  );
  return consolePage(
    f,
    ct(l, 'auditTitle'),
    html`${auditTabs(l, 'chain')}<h2>${ct(l, 'chainStatus')}</h2>${status}<p>${ct(l, 'lastVerified')}: ${
      v.lastVerifiedAt ? when(v.lastVerifiedAt, l) : ct(l, 'never')
    }</p>${v.mayVerify ? button(f, '/admin/security/audit/verify', ct(l, 'verifyNow'), { from: 'audit' }, true) : ''}
<h2>${ct(l, 'chainRuns')}</h2>${
      rows.length
        ? html`<table class="data" id="chain-runs"><thead><tr><th scope="col">${ct(l, 'at')}</th><th scope="col">${ct(l, 'outcome')}</th><th scope="col">${ct(l, 'rowsChecked')}</th><th scope="col">${ct(l, 'actor')}</th></tr></thead><tbody>${rows}</tbody></table>`
        : html`<p>${ct(l, 'chainUnknown')}</p>`
    }`,
  );
}
