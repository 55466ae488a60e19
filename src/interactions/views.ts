/** Login and consent pages. */
import { hasMessage, html, type Lang, langLink, page, t, vnDateTime } from '../ui/index.ts';

interface FormBase {
  lang: Lang;
  uid: string;
  csrf: string;
  clientName: string;
}

/** The interaction's own path (the pages posting to it switch language there). */
const interactionPath = (uid: string) => `/interaction/${encodeURIComponent(uid)}`;

/** The password login form. `error` is shown above it. */
export function loginPage(f: FormBase & { pin?: string; error?: string }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'loginTitle'),
    html`<p>${t(lang, 'loginLead')} <strong>${f.clientName}</strong></p>
${f.error ? html`<p class="error" role="alert">${f.error}</p>` : ''}
<form method="post" action="${interactionPath(f.uid)}/login" autocomplete="on">
<input type="hidden" name="csrf" value="${f.csrf}">
<input type="hidden" name="lang" value="${lang}">
<label for="pin">${t(lang, 'pin')}</label>
<input type="text" id="pin" name="pin" inputmode="numeric" autocomplete="username" maxlength="20" required value="${f.pin ?? ''}">
<label for="password">${t(lang, 'password')}</label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="256" required>
<button type="submit">${t(lang, 'submitLogin')}</button>
</form>
<p><a href="/recover?lang=${lang}">${t(lang, 'forgotLink')}</a></p>
<p><a href="/enroll?lang=${lang}">${t(lang, 'enrollLink')}</a></p>`,
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
  const form = (action: string, label: string, cls = '') =>
    html`<form method="post" action="${interactionPath(f.uid)}/${action}">
<input type="hidden" name="csrf" value="${f.csrf}"><input type="hidden" name="lang" value="${lang}">
<button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form>`;
  return page(
    lang,
    t(lang, 'consentTitle'),
    html`<p>${t(lang, 'consentLead')} <strong>${f.clientName}</strong></p>
<ul class="scopes">${claims}${apis}</ul>
${form('consent', t(lang, 'allow'))}${form('abort', t(lang, 'deny'), 'secondary')}`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/** Second factor (level 2): TOTP or recovery code. */
export function otpPage(f: FormBase & { error?: string }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'otpTitle'),
    html`<p>${t(lang, 'otpLead')}</p><p><strong>${f.clientName}</strong></p>
${f.error ? html`<p class="error" role="alert">${f.error}</p>` : ''}
<form method="post" action="${interactionPath(f.uid)}/otp" autocomplete="off">
<input type="hidden" name="csrf" value="${f.csrf}"><input type="hidden" name="lang" value="${lang}">
<label for="code">${t(lang, 'otpLabel')}</label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="20" required>
<button type="submit">${t(lang, 'confirm')}</button>
</form>`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/** The portal needs level 2 and the account is level 1: how to get there, and a way back to the portal. */
export function unmetPage(f: FormBase): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'unmetTitle'),
    html`<p>${t(lang, 'unmetLead')}</p><p><strong>${f.clientName}</strong></p>
<form method="post" action="${interactionPath(f.uid)}/unmet">
<input type="hidden" name="csrf" value="${f.csrf}"><input type="hidden" name="lang" value="${lang}">
<button type="submit">${t(lang, 'unmetBack')}</button>
</form>`,
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
