/**
 * The /account page, one named section per concern: identity, sign-in history, sessions, portals (grants), level 2,
 * password. The route loads the data (account.ts); this file only renders it (escaped by the `html` tag).
 */
import UAParser from 'ua-parser-js';
import type { PasskeyView } from '../accounts/index.ts';
import { type Html, hasMessage, html, type Lang, langLink, page, t, vnDate, vnDateTime } from '../ui/index.ts';
import { passkeyForm, pt } from './views.ts';

/** What the page shows, as loaded by the route. */
export interface AccountView {
  lang: Lang;
  csrf: string;
  resident: { fullName: string; birthDate: string; pin: string };
  level: number;
  history: {
    at: Date;
    portal: string;
    step: 'password' | 'second_factor' | 'step_up';
    success: boolean;
    level2: boolean;
    ip: string | null;
  }[];
  sessions: { uid: string; userAgent: string | null; ip: string | null; loginTs: number | null; current: boolean }[];
  grants: { grantId: string; portal: string; scope: string }[];
  secondFactor: { state: 'active'; recoveryCodesLeft: number } | { state: 'may_enroll' } | { state: 'needs_visit' };
  logoutUrl: string;
  /** The account's passkeys, and whether this session may add one now (else it is offered to confirm first). */
  passkeys: { list: PasskeyView[]; mayAdd: boolean };
}

/** How each sign-in step is named in the history. */
const STEP = { password: 'stepPassword', second_factor: 'stepSecondFactor', step_up: 'stepUp' } as const;

/** A readable device from its user agent (display only): browser, system and, on phones, the model. */
export function browserOf(ua: string | null): string {
  if (!ua) return '?';
  const { browser, os, device } = new UAParser(ua).getResult();
  const system = [os.name, os.version].filter(Boolean).join(' ');
  const model =
    device.type === 'mobile' || device.type === 'tablet' ? [device.vendor, device.model].filter(Boolean).join(' ') : '';
  return [browser.name ?? '?', system, model].filter(Boolean).join(' · ');
}

/** Masks a personal ID for display: first 3 and last 2 digits. */
export const mask = (pin: string) => `${pin.slice(0, 3)}*******${pin.slice(-2)}`;

const hiddenFields = (v: AccountView) =>
  html`<input type="hidden" name="csrf" value="${v.csrf}"><input type="hidden" name="lang" value="${v.lang}">`;

function identity(v: AccountView): Html {
  const l = v.lang;
  return html`<dl>
<dt>${t(l, 'accountName')}</dt><dd>${v.resident.fullName}</dd>
<dt>${t(l, 'accountBirth')}</dt><dd>${vnDate(v.resident.birthDate)}</dd>
<dt>${t(l, 'accountPin')}</dt><dd>${mask(v.resident.pin)}</dd>
<dt>${t(l, 'accountLevel')}</dt><dd>${t(l, v.level === 2 ? 'level2' : 'level1')}</dd>
</dl>`;
}

function history(v: AccountView): Html {
  const l = v.lang;
  const rows = v.history.map(
    (e) => html`<tr><td>${vnDateTime(e.at, l)}</td><td>${e.portal}</td>
<td>${t(l, e.success ? 'resultSuccess' : 'resultFailure')} (${t(l, STEP[e.step])}${e.level2 ? html`, ${t(l, 'level2')}` : ''})</td><td>${e.ip ?? ''}</td></tr>`,
  );
  return html`<h2>${t(l, 'historyTitle')}</h2>
<table class="history"><thead><tr><th>${t(l, 'historyTime')}</th><th>${t(l, 'historyPortal')}</th><th>${t(l, 'historyResult')}</th><th>${t(l, 'historyPlace')}</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function sessions(v: AccountView): Html {
  const l = v.lang;
  const rows = v.sessions.map(
    (x) => html`<tr><td>${browserOf(x.userAgent)} ${x.current ? t(l, 'sessionThis') : ''}</td><td>${x.ip ?? ''}</td>
<td>${x.loginTs ? vnDateTime(new Date(x.loginTs * 1000), l) : ''}</td>
<td><form method="post" action="/account/sessions/end">${hiddenFields(v)}<input type="hidden" name="session" value="${x.uid}">
<button type="submit" class="secondary">${t(l, 'sessionEnd')}</button></form></td></tr>`,
  );
  return html`<h2>${t(l, 'sessionsTitle')}</h2>
<table class="history"><thead><tr><th>${t(l, 'sessionDevice')}</th><th>${t(l, 'historyPlace')}</th><th>${t(l, 'sessionSince')}</th><th>${t(l, 'sessionAction')}</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function grants(v: AccountView): Html {
  const l = v.lang;
  const items = v.grants.map((g) => {
    const data = g.scope
      .split(' ')
      .map((x) => `scope_${x}`)
      .filter(hasMessage)
      .map((k) => t(l, k))
      .join('; ');
    return html`<li><strong>${g.portal}</strong>: ${data}
<form method="post" action="/account/grants/revoke">${hiddenFields(v)}<input type="hidden" name="grant" value="${g.grantId}">
<button type="submit" class="secondary">${t(l, 'revoke')}</button></form></li>`;
  });
  return html`<h2>${t(l, 'grantsTitle')}</h2>${
    items.length ? html`<ul class="grants">${items}</ul>` : html`<p>${t(l, 'grantsNone')}</p>`
  }`;
}

function secondFactor(v: AccountView): Html {
  const l = v.lang;
  const f = v.secondFactor;
  const body =
    f.state === 'active'
      ? html`<p>${t(l, 'level2Active')} ${f.recoveryCodesLeft}</p>`
      : f.state === 'may_enroll'
        ? html`<form method="post" action="/account/totp/start">${hiddenFields(v)}<button type="submit">${t(l, 'totpStart')}</button></form>`
        : html`<p>${t(l, 'level2Visit')}</p><form method="post" action="/account/activate">${hiddenFields(v)}
<label for="code">${t(l, 'activationCode')}</label><input type="text" id="code" name="code" maxlength="30" autocomplete="off" required>
<button type="submit">${t(l, 'activate')}</button></form>`;
  return html`<h2>${t(l, 'level2Title')}</h2>${body}`;
}

function passkeys(v: AccountView): Html {
  const l = v.lang;
  const items = v.passkeys.list.map(
    (p) => html`<li><strong>${p.name}</strong> (${t(l, p.synced ? 'passkeySynced' : 'passkeyDeviceBound')}${
      p.level >= 2 ? html`, ${t(l, 'passkeyLevel2')}` : ''
    }; ${t(l, 'passkeyCreated')} ${vnDateTime(p.createdAt, l)}${
      p.lastUsedAt ? html`; ${t(l, 'passkeyLastUsed')} ${vnDateTime(p.lastUsedAt, l)}` : ''
    })${p.cloneSuspected ? html`<p class="error">${t(l, 'passkeyClone')}</p>` : ''}
<form method="post" action="/account/passkeys/rename">${hiddenFields(v)}<input type="hidden" name="passkey" value="${p.id}">
<label for="pk-name-${p.id}">${t(l, 'passkeyName')}</label><input type="text" id="pk-name-${p.id}" name="name" maxlength="60" required value="${p.name}">
<button type="submit" class="secondary">${t(l, 'passkeyRename')}</button></form>
<form method="post" action="/account/passkeys/remove">${hiddenFields(v)}<input type="hidden" name="passkey" value="${p.id}">
<button type="submit" class="secondary">${t(l, 'passkeyRemove')}</button></form></li>`,
  );
  const add = v.passkeys.mayAdd
    ? passkeyForm(
        v,
        '/account/passkeys',
        'register',
        t(l, 'passkeyAdd'),
        t(l, 'passkeyBrowserError'),
        html`<label for="pk-new-name">${t(l, 'passkeyName')}</label><input type="text" id="pk-new-name" name="name" maxlength="60" value="${t(l, 'passkeyDefaultName')}">`,
      )
    : html`<p>${t(l, 'passkeyConfirmFirst')}</p><p><a class="button secondary" href="/account/confirm">${t(l, 'passkeyConfirm')}</a></p>`;
  return html`<h2>${t(l, 'passkeysTitle')}</h2><p>${t(l, 'passkeysLead')}</p>${
    items.length ? html`<ul class="passkeys">${items}</ul>` : html`<p>${t(l, 'passkeysNone')}</p>`
  }${add}`;
}

function password(v: AccountView): Html {
  const l = v.lang;
  return html`<h2>${t(l, 'changePassword')}</h2><form method="post" action="/account/password">${hiddenFields(v)}
<label for="current">${t(l, 'currentPassword')}</label><input type="password" id="current" name="current" maxlength="256" required autocomplete="current-password">
<label for="next">${t(l, 'newPassword')}</label><input type="password" id="next" name="next" minlength="8" maxlength="128" required autocomplete="new-password">
<p class="muted">${t(l, 'passwordEndsOthers')}</p>
<label class="check"><input type="checkbox" name="end_all" value="yes"> ${t(l, 'passwordEndAll')}</label>
<button type="submit">${t(l, 'changePassword')}</button></form>`;
}

/** The whole page. */
export function accountPage(v: AccountView): string {
  const l = v.lang;
  return page(
    l,
    t(l, 'accountTitle'),
    html`${identity(v)}
${history(v)}
${sessions(v)}
${grants(v)}
${secondFactor(v)}
${passkeys(v)}
${password(v)}
<p><a href="${v.logoutUrl}">${t(l, 'signOut')}</a></p>`,
    langLink(l, '/account'),
  );
}

/**
 * Asks before removing a passkey; `last`: it is the account's last level-2 factor (no TOTP, no other level-2
 * passkey), so the account then signs in at level 1 only: said plainly before the citizen confirms.
 */
export function removePasskeyPage(v: { lang: Lang; csrf: string; passkey: PasskeyView; last: boolean }): string {
  const l = v.lang;
  const p = v.passkey;
  return page(
    l,
    pt(l, 'removeTitle'),
    html`<p>${pt(l, 'removeLead')} <strong>${p.name}</strong> (${t(l, p.synced ? 'passkeySynced' : 'passkeyDeviceBound')}; ${t(l, 'passkeyCreated')} ${vnDateTime(p.createdAt, l)})</p>
${v.last ? html`<p class="error" role="alert">${pt(l, 'removeLast')}</p>` : ''}
<form method="post" action="/account/passkeys/remove"><input type="hidden" name="csrf" value="${v.csrf}"><input type="hidden" name="lang" value="${l}">
<input type="hidden" name="passkey" value="${p.id}"><input type="hidden" name="confirm" value="yes">
<button type="submit">${pt(l, 'removeConfirm')}</button></form>
<p><a class="button secondary" href="/account?lang=${l}">${pt(l, 'removeCancel')}</a></p>`,
  );
}
