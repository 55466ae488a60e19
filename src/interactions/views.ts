/** Login and consent pages. */
import { type Html, hasMessage, html, type Lang, langLink, page, t, vnDateTime } from '../ui/index.ts';
import { errorBlock, type FormError, hidden, input } from './forms.ts';

interface FormBase {
  lang: Lang;
  uid: string;
  csrf: string;
  clientName: string;
  /** Who is signed in (consent, step-up): name and masked personal ID, with a way out if it is not them. */
  signedIn?: { name: string; pin: string };
}

/** "Signed in as …, not you? Sign out": on every page that acts for a session's citizen. */
const whoIsSignedIn = (f: FormBase): Html | '' =>
  f.signedIn
    ? html`<p class="signed-in">${t(f.lang, 'signedInAs')} <strong>${f.signedIn.name}</strong> (${f.signedIn.pin}).
<a href="/session/end?lang=${f.lang}">${t(f.lang, 'notYou')}</a></p>`
    : '';

/** A one-button form posting to this interaction (allow, deny, cancel, back to the portal). */
const button = (f: FormBase, action: string, label: string, cls = '') =>
  html`<form method="post" action="${interactionPath(f.uid)}/${action}">${hidden(f.csrf, f.lang)}
<button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form>`;

/** The interaction's own path (the pages posting to it switch language there). */
const interactionPath = (uid: string) => `/interaction/${encodeURIComponent(uid)}`;

/**
 * The passkey button: a form that passkey.js completes (options, the browser's answer) and submits; hidden until the
 * script finds WebAuthn. The scripts are same-origin files (no inline script).
 */
export const passkeyForm = (
  f: { lang: Lang; csrf: string },
  action: string,
  kind: 'login' | 'register',
  label: string,
  failure: string,
  more: Html | '' = '',
): Html =>
  html`<form method="post" action="${action}" data-passkey="${kind}" data-options="${action}/options">${hidden(f.csrf, f.lang)}
<input type="hidden" name="response" value="">${more}
<button type="submit" class="secondary" hidden>${label}</button>
<p class="error" role="alert" data-passkey-error hidden>${failure}</p></form>
<script src="/static/webauthn.js"></script><script src="/static/passkey.js"></script>`;

/** The password login form. `error` is shown above it and tied to its field. */
export function loginPage(f: FormBase & { pin?: string; error?: FormError }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'loginTitle'),
    html`<p>${t(lang, 'loginLead')} <strong>${f.clientName}</strong></p>
${errorBlock(f.error)}
<form method="post" action="${interactionPath(f.uid)}/login" autocomplete="on">
${hidden(f.csrf, lang)}
${input('pin', t(lang, 'pin'), f.pin ?? '', 'text', html`inputmode="numeric" autocomplete="username" maxlength="20" required`, f.error, 'pin-help')}
<p class="muted" id="pin-help">${t(lang, 'pinHelp')}</p>
${input('password', t(lang, 'password'), '', 'password', html`autocomplete="current-password" maxlength="256" required`, f.error)}
<button type="submit">${t(lang, 'submitLogin')}</button>
</form>
${passkeyForm(f, `${interactionPath(f.uid)}/passkey`, 'login', t(lang, 'passkeyLogin'), t(lang, 'passkeyBrowserError'))}
${button(f, 'abort', t(lang, 'cancel'), 'secondary')}
<p><a href="/recover?lang=${lang}">${t(lang, 'forgotLink')}</a></p>
<p><a href="/enroll?lang=${lang}&amp;back=${encodeURIComponent(interactionPath(f.uid))}">${t(lang, 'enrollLink')}</a></p>`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/** The consent page listing what the portal will receive. */
export function consentPage(f: FormBase & { scopes: string[]; resources?: Record<string, string[]> }): string {
  const { lang } = f;
  const claims = f.scopes
    .map((s) => `scope_${s}`)
    .filter(hasMessage)
    .map((k) => html`<li>${t(lang, k)}</li>`);
  // Access to an agency API (RFC 8707): named by its address and the permissions asked.
  const apis = Object.entries(f.resources ?? {}).map(
    ([api, scopes]) => html`<li>${t(lang, 'apiAccess')} <code>${api}</code>: ${scopes.join(', ')}</li>`,
  );
  return page(
    lang,
    t(lang, 'consentTitle'),
    html`${whoIsSignedIn(f)}<p>${t(lang, 'consentLead')} <strong>${f.clientName}</strong></p>
<ul class="scopes">${claims}${apis}</ul>
${button(f, 'consent', t(lang, 'allow'))}${button(f, 'abort', t(lang, 'deny'), 'secondary')}`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/**
 * Second factor (level 2): a level-2 passkey first when the account has one, then TOTP or a recovery code; a cancel
 * returns `access_denied` to the portal.
 */
export function otpPage(f: FormBase & { error?: FormError; passkey?: boolean }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'otpTitle'),
    html`${whoIsSignedIn(f)}<p>${t(lang, 'otpLead')}</p><p><strong>${f.clientName}</strong></p>
${errorBlock(f.error)}
${f.passkey ? html`${passkeyForm(f, `${interactionPath(f.uid)}/passkey`, 'login', t(lang, 'passkeyStepUp'), t(lang, 'passkeyBrowserError'))}<p>${t(lang, 'passkeyOr')}</p>` : ''}
<form method="post" action="${interactionPath(f.uid)}/otp" autocomplete="off">
${hidden(f.csrf, lang)}
${input('code', t(lang, 'otpLabel'), '', 'text', html`inputmode="numeric" autocomplete="one-time-code" maxlength="20" required`, f.error)}
<button type="submit">${t(lang, 'confirm')}</button>
</form>
${button(f, 'abort', t(lang, 'cancel'), 'secondary')}`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/** The portal needs level 2 and the account is level 1: how to get there, and a way back to the portal. */
export function unmetPage(f: FormBase): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'unmetTitle'),
    html`${whoIsSignedIn(f)}<p>${t(lang, 'unmetLead')}</p><p><strong>${f.clientName}</strong></p>
${button(f, 'unmet', t(lang, 'unmetBack'))}`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/**
 * Shown once at the first sign-in after a password reset: when, how, from where; then on to the portal. `next` is
 * oidc-provider's own resume URL (on this issuer).
 */
export function resetNoticePage(
  f: FormBase & { at: Date; via: 'sms' | 'officer'; ip: string | null; next: string },
): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'resetNoticeTitle'),
    html`<p role="alert">${t(lang, f.via === 'officer' ? 'resetNoticeOfficer' : 'resetNoticeSms')} <strong>${vnDateTime(
      f.at,
      lang,
    )}</strong>${f.ip ? html`, ${t(lang, 'resetNoticeFrom')} <strong>${f.ip}</strong>` : ''}.</p>
<p>${t(lang, 'resetNoticeHelp')}</p>
<p><a class="button" href="${f.next}">${t(lang, 'continue')}</a> <strong>${f.clientName}</strong></p>`,
  );
}
