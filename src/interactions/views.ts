/** Login and consent pages. */
import { h, hasMessage, type Lang, page, t, vnDateTime } from '../ui/index.ts';

interface FormBase {
  lang: Lang;
  uid: string;
  csrf: string;
  clientName: string;
}

const langLink = (lang: Lang, uid: string) =>
  `/interaction/${encodeURIComponent(uid)}?lang=${lang === 'vi' ? 'en' : 'vi'}`;

/** The password login form. `error` is shown above it. */
export function loginPage(f: FormBase & { pin?: string; error?: string }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'loginTitle'),
    `<p>${h(t(lang, 'loginLead'))} <strong>${h(f.clientName)}</strong></p>
${f.error ? `<p class="error" role="alert">${h(f.error)}</p>` : ''}
<form method="post" action="/interaction/${h(encodeURIComponent(f.uid))}/login" autocomplete="on">
<input type="hidden" name="csrf" value="${h(f.csrf)}">
<input type="hidden" name="lang" value="${lang}">
<label for="pin">${h(t(lang, 'pin'))}</label>
<input type="text" id="pin" name="pin" inputmode="numeric" autocomplete="username" maxlength="20" required value="${h(f.pin ?? '')}">
<label for="password">${h(t(lang, 'password'))}</label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="256" required>
<button type="submit">${h(t(lang, 'submitLogin'))}</button>
</form>
<p><a href="/recover?lang=${lang}">${h(t(lang, 'forgotLink'))}</a></p>
<p><a href="/enroll?lang=${lang}">${h(t(lang, 'enrollLink'))}</a></p>`,
    langLink(lang, f.uid),
  );
}

/** The consent page listing what the portal will receive. */
export function consentPage(f: FormBase & { scopes: string[]; resources?: Record<string, string[]> }): string {
  const { lang } = f;
  const items =
    f.scopes
      .map((s) => `scope_${s}`)
      .filter(hasMessage)
      .map((k) => `<li>${h(t(lang, k))}</li>`)
      .join('') +
    // Access to an agency API (RFC 8707): named by its address and the permissions asked.
    Object.entries(f.resources ?? {})
      .map(([api, scopes]) => `<li>${h(t(lang, 'apiAccess'))} <code>${h(api)}</code>: ${h(scopes.join(', '))}</li>`)
      .join('');
  const form = (action: string, label: string, cls = '') =>
    `<form method="post" action="/interaction/${h(encodeURIComponent(f.uid))}/${action}">
<input type="hidden" name="csrf" value="${h(f.csrf)}"><input type="hidden" name="lang" value="${lang}">
<button type="submit"${cls ? ` class="${cls}"` : ''}>${h(label)}</button></form>`;
  return page(
    lang,
    t(lang, 'consentTitle'),
    `<p>${h(t(lang, 'consentLead'))} <strong>${h(f.clientName)}</strong></p>
<ul class="scopes">${items}</ul>
${form('consent', t(lang, 'allow'))}${form('abort', t(lang, 'deny'), 'secondary')}`,
    langLink(lang, f.uid),
  );
}

/** Second factor (level 2): TOTP or recovery code. */
export function otpPage(f: FormBase & { error?: string }): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'otpTitle'),
    `<p>${h(t(lang, 'otpLead'))}</p><p><strong>${h(f.clientName)}</strong></p>
${f.error ? `<p class="error" role="alert">${h(f.error)}</p>` : ''}
<form method="post" action="/interaction/${h(encodeURIComponent(f.uid))}/otp" autocomplete="off">
<input type="hidden" name="csrf" value="${h(f.csrf)}"><input type="hidden" name="lang" value="${lang}">
<label for="code">${h(t(lang, 'otpLabel'))}</label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="20" required>
<button type="submit">${h(t(lang, 'confirm'))}</button>
</form>`,
    langLink(lang, f.uid),
  );
}

/** The portal needs level 2 and the account is level 1: how to get there, and a way back to the portal. */
export function unmetPage(f: FormBase): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'unmetTitle'),
    `<p>${h(t(lang, 'unmetLead'))}</p><p><strong>${h(f.clientName)}</strong></p>
<form method="post" action="/interaction/${h(encodeURIComponent(f.uid))}/unmet">
<input type="hidden" name="csrf" value="${h(f.csrf)}"><input type="hidden" name="lang" value="${lang}">
<button type="submit">${h(t(lang, 'unmetBack'))}</button>
</form>`,
    langLink(lang, f.uid),
  );
}

/** Shown once at the first sign-in after a password reset: when, how, from where; then on to the portal. */
export function resetNoticePage(
  f: FormBase & { at: Date; via: 'sms' | 'officer'; ip: string | null; next: string },
): string {
  const { lang } = f;
  return page(
    lang,
    t(lang, 'resetNoticeTitle'),
    `<p role="alert">${h(t(lang, f.via === 'officer' ? 'resetNoticeOfficer' : 'resetNoticeSms'))} <strong>${h(
      vnDateTime(f.at, lang),
    )}</strong>${f.ip ? `, ${h(t(lang, 'resetNoticeFrom'))} <strong>${h(f.ip)}</strong>` : ''}.</p>
<p>${h(t(lang, 'resetNoticeHelp'))}</p>
<p><a class="button" href="${h(f.next)}">${h(t(lang, 'continue'))}</a> <strong>${h(f.clientName)}</strong></p>`,
  );
}
