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

/**
 * Text of the phishing-resistant level and the passkey removal page, both languages (typed: a missing translation is
 * a type error). To move into the catalogue (src/ui/i18n.ts) with its owner.
 */
const passkeyText = {
  phishingTitle: { vi: 'Cần đăng nhập bằng khóa truy cập (passkey)', en: 'A passkey sign-in is needed' },
  phishingLead: {
    vi: 'Cổng dịch vụ này chỉ chấp nhận đăng nhập bằng khóa truy cập (passkey) của tài khoản định danh mức 2: trang giả mạo không thể lấy được nó. Tài khoản của bạn chưa có khóa truy cập dùng được cho việc này.',
    en: 'This portal accepts only a sign-in with a passkey of a level 2 e-ID account: a fake site cannot get hold of one. Your account has no passkey that can be used for this.',
  },
  phishingHow: {
    vi: 'Đăng nhập mức 2 tại trang tài khoản, thêm một khóa truy cập trên thiết bị của bạn, rồi quay lại cổng dịch vụ.',
    en: 'Sign in at level 2 on your account page, add a passkey on your device, then come back to the portal.',
  },
  phishingAccount: { vi: 'Mở trang tài khoản', en: 'Open my account page' },
  passkeyOnlyTitle: { vi: 'Xác nhận bằng khóa truy cập (passkey)', en: 'Confirm with a passkey' },
  passkeyOnlyLead: {
    vi: 'Cổng dịch vụ này yêu cầu khóa truy cập (passkey): dùng vân tay, khuôn mặt hoặc khóa màn hình của thiết bị. Mã xác thực không dùng được ở đây.',
    en: "This portal requires a passkey: use your device's fingerprint, face or screen lock. A code cannot be used here.",
  },
  removeTitle: { vi: 'Xóa khóa truy cập?', en: 'Remove this passkey?' },
  removeLead: {
    vi: 'Khóa truy cập này sẽ không đăng nhập được nữa:',
    en: 'This passkey will no longer sign you in:',
  },
  removeLast: {
    vi: 'Cảnh báo: đây là cách xác thực mức 2 cuối cùng của tài khoản. Sau khi xóa, bạn chỉ đăng nhập được ở mức 1 (hoặc bằng mã khôi phục còn lại) cho đến khi cài đặt lại yếu tố thứ hai.',
    en: 'Warning: this is the last level 2 factor of the account. Once it is removed, you can sign in at level 1 only (or with a recovery code you have left) until you set up a second factor again.',
  },
  removeConfirm: { vi: 'Xóa khóa truy cập', en: 'Remove the passkey' },
  removeCancel: { vi: 'Giữ lại', en: 'Keep it' },
} satisfies Record<string, Record<Lang, string>>;

/** A text of `passkeyText` in `lang`. */
export const pt = (lang: Lang, key: keyof typeof passkeyText): string => passkeyText[key][lang];

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
${input('pin', t(lang, 'pin'), f.pin ?? '', 'text', html`inputmode="numeric" autocomplete="username webauthn" maxlength="20" required`, f.error, 'pin-help')}
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
 * returns `access_denied` to the portal. `passkeyOnly` (the portal requires the phishing-resistant level): the passkey
 * and no code form.
 */
export function otpPage(f: FormBase & { error?: FormError; passkey?: boolean; passkeyOnly?: boolean }): string {
  const { lang } = f;
  const passkey = passkeyForm(
    f,
    `${interactionPath(f.uid)}/passkey`,
    'login',
    t(lang, 'passkeyStepUp'),
    t(lang, 'passkeyBrowserError'),
  );
  if (f.passkeyOnly)
    return page(
      lang,
      pt(lang, 'passkeyOnlyTitle'),
      html`${whoIsSignedIn(f)}<p>${pt(lang, 'passkeyOnlyLead')}</p><p><strong>${f.clientName}</strong></p>
${errorBlock(f.error)}
${passkey}
${button(f, 'abort', t(lang, 'cancel'), 'secondary')}`,
      langLink(lang, interactionPath(f.uid)),
    );
  return page(
    lang,
    t(lang, 'otpTitle'),
    html`${whoIsSignedIn(f)}<p>${t(lang, 'otpLead')}</p><p><strong>${f.clientName}</strong></p>
${errorBlock(f.error)}
${f.passkey ? html`${passkey}<p>${t(lang, 'passkeyOr')}</p>` : ''}
<form method="post" action="${interactionPath(f.uid)}/otp" autocomplete="off">
${hidden(f.csrf, lang)}
${input('code', t(lang, 'otpLabel'), '', 'text', html`inputmode="numeric" autocomplete="one-time-code" maxlength="20" required`, f.error)}
<button type="submit">${t(lang, 'confirm')}</button>
</form>
${button(f, 'abort', t(lang, 'cancel'), 'secondary')}`,
    langLink(lang, interactionPath(f.uid)),
  );
}

/**
 * The portal needs a level the account cannot give: level 2 for a level-1 account, or (`phishing`) the
 * phishing-resistant level for an account with no passkey that reaches it. How to get there, and a way back to the
 * portal (which gets unmet_authentication_requirements).
 */
export function unmetPage(f: FormBase & { phishing?: boolean }): string {
  const { lang } = f;
  const body = f.phishing
    ? html`<p>${pt(lang, 'phishingLead')}</p><p>${pt(lang, 'phishingHow')}</p>
<p><a href="/account?lang=${lang}">${pt(lang, 'phishingAccount')}</a></p>`
    : html`<p>${t(lang, 'unmetLead')}</p>`;
  return page(
    lang,
    f.phishing ? pt(lang, 'phishingTitle') : t(lang, 'unmetTitle'),
    html`${whoIsSignedIn(f)}${body}<p><strong>${f.clientName}</strong></p>
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
