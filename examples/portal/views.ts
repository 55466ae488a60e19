/**
 * The portal's pages, in Vietnamese or English (Vietnamese first; a switch in the header). No script; markup built
 * with the `html` tag, which escapes every interpolated value; the style sheet is served from /style.css so the CSP
 * needs no inline allowance. Every text is in the catalogue below, in both languages (a missing English text is a
 * type error). Long values (`sub`, the `acr` URN) wrap inside their column: nothing is wider than a 320 px screen.
 */
import { html, type SafeHtml } from '@remix-run/html-template';
import type { PortalConfig } from './config.ts';
import type { PortalUser } from './sessions.ts';

/** The portal's languages: Vietnamese first. */
export type Lang = 'vi' | 'en';

/**
 * The page's language: `?lang=` (the switch), then the remembered choice (cookie), then the browser's first
 * preferred language when it is English, else Vietnamese.
 */
export function pickLang(query: unknown, cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  if (query === 'vi' || query === 'en') return query;
  if (cookie === 'vi' || cookie === 'en') return cookie;
  return (acceptLanguage?.split(',')[0]?.trim().toLowerCase() ?? '').startsWith('en') ? 'en' : 'vi';
}

const VI = {
  otherLang: 'English',
  skip: 'Bỏ qua, đến nội dung chính',
  footer: 'Đăng nhập bằng tài khoản định danh điện tử quốc gia.',
  welcome: 'Chào mừng',
  signedOut: 'Bạn chưa đăng nhập.',
  loggedOut: 'Bạn đã đăng xuất.',
  needsLevel2: 'Cổng này yêu cầu tài khoản định danh điện tử mức 2 (mật khẩu và mã xác thực).',
  login: 'Đăng nhập bằng định danh điện tử',
  loginHelp: 'Bạn sẽ được chuyển tới trang đăng nhập của hệ thống định danh điện tử quốc gia, rồi quay lại đây.',
  hello: 'Xin chào',
  signedInAs: 'Bạn đã đăng nhập với tên',
  signedIn: 'Bạn đã đăng nhập.',
  received: 'Thông tin cổng nhận được',
  receivedLead: 'Đây là những gì hệ thống định danh điện tử gửi cho cổng này.',
  name: 'Họ và tên',
  birthdate: 'Ngày sinh',
  acr: 'Mức định danh (acr)',
  amr: 'Phương thức xác thực (amr)',
  sub: 'Mã định danh tại cổng này (sub)',
  authTime: 'Đăng nhập lúc',
  level1: 'Mức 1: mật khẩu',
  level2: 'Mức 2: mật khẩu và mã xác thực',
  pwd: 'mật khẩu',
  otp: 'mã dùng một lần',
  mfa: 'nhiều yếu tố',
  logout: 'Đăng xuất',
  logoutHelp: 'Đăng xuất ở đây sẽ đăng xuất bạn khỏi mọi cổng dùng định danh điện tử.',
  errorTitle: 'Chưa đăng nhập được',
  errorCode: 'Mã lỗi',
  home: 'Về trang chủ',
  unmet_authentication_requirements:
    'Cổng này yêu cầu tài khoản định danh điện tử mức 2. Tài khoản của bạn chưa đạt mức 2: hãy xác minh trực tiếp tại cơ quan công an, kích hoạt tài khoản và đăng ký ứng dụng xác thực, rồi đăng nhập lại.',
  insufficient_level:
    'Lần đăng nhập này chưa đạt mức 2 mà cổng yêu cầu. Hãy đăng nhập lại bằng mật khẩu và mã xác thực.',
  access_denied:
    'Bạn đã từ chối chia sẻ thông tin với cổng này, nên chưa thể đăng nhập. Bạn có thể thử lại bất cứ lúc nào.',
  login_required: 'Bạn cần đăng nhập tại hệ thống định danh điện tử.',
  session_expired: 'Phiên đăng nhập đã hết hạn hoặc không hợp lệ (có thể bạn đã mở nhiều cửa sổ). Hãy đăng nhập lại.',
  provider_unavailable: 'Không kết nối được với hệ thống định danh điện tử. Hãy thử lại sau ít phút.',
  generic: 'Không thể hoàn tất đăng nhập. Hãy quay lại trang chủ và thử lại.',
};

type MessageKey = keyof typeof VI;

const EN: Record<MessageKey, string> = {
  otherLang: 'Tiếng Việt',
  skip: 'Skip to main content',
  footer: 'Sign in with your national electronic identity.',
  welcome: 'Welcome',
  signedOut: 'You are not signed in.',
  loggedOut: 'You have signed out.',
  needsLevel2: 'This portal requires a level 2 e-ID account (password and one-time code).',
  login: 'Sign in with national e-ID',
  loginHelp: 'You will go to the national e-ID sign-in page, then come back here.',
  hello: 'Hello',
  signedInAs: 'You are signed in as',
  signedIn: 'You are signed in.',
  received: 'What this portal received',
  receivedLead: 'This is what the national e-ID service sent to this portal.',
  name: 'Full name',
  birthdate: 'Date of birth',
  acr: 'Level of assurance (acr)',
  amr: 'Authentication methods (amr)',
  sub: 'Your identifier at this portal (sub)',
  authTime: 'Signed in at',
  level1: 'Level 1: password',
  level2: 'Level 2: password and one-time code',
  pwd: 'password',
  otp: 'one-time code',
  mfa: 'multi-factor',
  logout: 'Sign out',
  logoutHelp: 'Signing out here signs you out of every portal that uses the national e-ID.',
  errorTitle: 'You are not signed in',
  errorCode: 'Error code',
  home: 'Back to the home page',
  unmet_authentication_requirements:
    'This portal requires a level 2 e-ID account. Yours is not level 2 yet: have it verified in person, activate it and enroll an authenticator app, then sign in again.',
  insufficient_level:
    'This sign-in did not reach the level 2 this portal requires. Sign in again with your password and code.',
  access_denied:
    'You declined to share your information with this portal, so you are not signed in. You can try again any time.',
  login_required: 'You need to sign in at the national e-ID service.',
  session_expired: 'The sign-in expired or is not valid (perhaps several windows were open). Please sign in again.',
  provider_unavailable: 'The national e-ID service cannot be reached. Please try again in a few minutes.',
  generic: 'The sign-in could not be completed. Go back to the home page and try again.',
};

const TEXT: Record<Lang, Record<MessageKey, string>> = { vi: VI, en: EN };
const t = (lang: Lang, key: MessageKey) => TEXT[lang][key];

/** The style sheet (served at /style.css): one column on a phone, no horizontal scrolling down to 320 px. */
export const STYLE = `*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;color:#1c1c1c;
background:#f3f4f6;-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column}
.skip{position:absolute;left:-9999px;top:0}
.skip:focus{left:.5rem;top:.5rem;z-index:1;background:#fff;color:#1c1c1c;padding:.5rem .8rem}
header{background:#a5161d;color:#fff}
.bar,main,footer{width:100%;max-width:46rem;margin:0 auto;padding-left:1rem;padding-right:1rem}
.bar{display:flex;flex-wrap:wrap;gap:.4rem 1rem;justify-content:space-between;align-items:center;padding-top:.75rem;
padding-bottom:.75rem}
.brand{font-weight:600;font-size:1.05rem;overflow-wrap:anywhere}
header a{color:#fff;text-underline-offset:.2em}
main{flex:1 0 auto;padding-top:1.25rem;padding-bottom:1.25rem}
.card{background:#fff;border:1px solid #d5d8dd;border-radius:8px;padding:1.25rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1.2rem;line-height:1.3;margin:1.75rem 0 .4rem}
p,form{margin:0 0 1rem}
.muted{color:#4a4d52;font-size:.95rem}
a{color:#0b4f9c}
.button,button{display:inline-block;min-height:2.75rem;background:#a5161d;color:#fff;border:0;border-radius:4px;
padding:.65rem 1.1rem;font:inherit;font-weight:600;line-height:1.5;text-align:center;text-decoration:none;cursor:pointer}
.button:hover,button:hover{background:#86121a}
a:focus-visible,button:focus-visible{outline:3px solid #ffd200;outline-offset:0;background:#ffd200;color:#0b0c0c;
box-shadow:0 4px 0 #0b0c0c;text-decoration:none}
.claims{margin:0 0 1.5rem;border-top:1px solid #d5d8dd}
.claims div{padding:.6rem 0;border-bottom:1px solid #d5d8dd}
.claims dt{font-weight:600}
.claims dd{margin:.1rem 0 0;min-width:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.9em;overflow-wrap:anywhere}
.notice,.error{padding:.7rem .9rem;border-radius:4px;border-left:4px solid}
.notice{background:#e8f4ea;border-color:#1e7b34}
.error{background:#fdecea;border-color:#a5161d}
footer{padding-top:.5rem;padding-bottom:1.5rem;color:#4a4d52;font-size:.875rem}
@media (min-width:40rem){
.card{padding:2rem}
.claims div{display:grid;grid-template-columns:minmax(0,15rem) minmax(0,1fr);gap:1rem}
.claims dd{margin:0}
}`;

/** Where the language switch leads: this page in the other language (a path of this portal only). */
function switchHref(lang: Lang, self: string): string {
  const url = new URL(self, 'http://portal.invalid');
  url.searchParams.set('lang', lang === 'vi' ? 'en' : 'vi');
  return `${url.pathname}${url.search}`;
}

/** The one layout: header with the portal's name and the language switch, main content in a card, footer. */
function page(config: PortalConfig, lang: Lang, self: string, title: string, body: SafeHtml): string {
  const other: Lang = lang === 'vi' ? 'en' : 'vi';
  return String(html`<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${config.name}</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<a class="skip" href="#main">${t(lang, 'skip')}</a>
<header><div class="bar"><span class="brand">${config.name}</span>
<a id="lang" href="${switchHref(lang, self)}" lang="${other}" hreflang="${other}">${t(lang, 'otherLang')}</a></div></header>
<main id="main"><div class="card">
<h1>${title}</h1>
${body}
</div></main>
<footer><p>${t(lang, 'footer')}</p></footer>
</body>
</html>`);
}

/** Home page for a visitor who is not signed in. `notice` follows a completed logout. */
export function signedOutPage(config: PortalConfig, lang: Lang, notice?: 'logged_out'): string {
  const done =
    notice === 'logged_out' ? html`<p class="notice" role="status" id="logged-out">${t(lang, 'loggedOut')}</p>` : '';
  const level = config.minLevel === 2 ? html`<p>${t(lang, 'needsLevel2')}</p>` : '';
  return page(
    config,
    lang,
    '/',
    t(lang, 'welcome'),
    html`${done}<p id="status">${t(lang, 'signedOut')}</p>${level}
<p><a class="button" id="login" href="/login">${t(lang, 'login')}</a></p>
<p class="muted">${t(lang, 'loginHelp')}</p>`,
  );
}

const ACR_TEXT: Record<string, MessageKey> = { 'urn:dinhdanh:loa:1': 'level1', 'urn:dinhdanh:loa:2': 'level2' };
const AMR_TEXT: Record<string, MessageKey> = { pwd: 'pwd', otp: 'otp', mfa: 'mfa' };

/** A moment as the citizen reads it: Vietnam time, in the page's language; the exact instant in `datetime`. */
function when(lang: Lang, seconds: number | undefined): SafeHtml | string {
  if (!seconds) return '—';
  const d = new Date(seconds * 1000);
  const text = d.toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB', {
    timeZone: 'Asia/Ho_Chi_Minh',
    dateStyle: 'medium',
    timeStyle: 'medium',
    hour12: false,
  });
  return html`<time datetime="${d.toISOString()}">${text}</time>`;
}

/** Home page for a signed-in citizen: what the portal received, and a logout button. */
export function signedInPage(config: PortalConfig, lang: Lang, user: PortalUser): string {
  const name = typeof user.profile.name === 'string' ? user.profile.name : '';
  const acr = user.acr
    ? html`<code>${user.acr}</code>${ACR_TEXT[user.acr] ? html`<br>${t(lang, ACR_TEXT[user.acr]!)}` : ''}`
    : '—';
  const amr = user.amr.length
    ? user.amr.map(
        (m, i) => html`${i ? ', ' : ''}<code>${m}</code>${AMR_TEXT[m] ? html` (${t(lang, AMR_TEXT[m]!)})` : ''}`,
      )
    : '—';
  const rows: [MessageKey, SafeHtml | string][] = [
    ['name', name || '—'],
    ['birthdate', typeof user.profile.birthdate === 'string' ? user.profile.birthdate : '—'],
    ['acr', acr],
    ['amr', html`${amr}`],
    ['sub', html`<code id="sub">${user.sub}</code>`],
    ['authTime', when(lang, user.authTime)],
  ];
  return page(
    config,
    lang,
    '/',
    t(lang, 'hello'),
    html`<p id="status">${name ? html`${t(lang, 'signedInAs')} <strong id="name">${name}</strong>.` : t(lang, 'signedIn')}</p>
<h2>${t(lang, 'received')}</h2>
<p class="muted">${t(lang, 'receivedLead')}</p>
<dl class="claims">${rows.map(([k, v]) => html`<div><dt>${t(lang, k)}</dt><dd>${v}</dd></div>`)}</dl>
<form method="post" action="/logout"><button type="submit" id="logout">${t(lang, 'logout')}</button></form>
<p class="muted">${t(lang, 'logoutHelp')}</p>`,
  );
}

const ERRORS = new Set<string>([
  'unmet_authentication_requirements',
  'insufficient_level',
  'access_denied',
  'login_required',
  'session_expired',
  'provider_unavailable',
]);

/** A clear error page for a failed login; shows the error code (a short ASCII word), never internals. */
export function errorPage(config: PortalConfig, lang: Lang, code: string): string {
  const message = t(lang, ERRORS.has(code) ? (code as MessageKey) : 'generic');
  return page(
    config,
    lang,
    `/error?code=${encodeURIComponent(code)}`,
    t(lang, 'errorTitle'),
    html`<p class="error" role="alert" id="error">${message}</p>
<p class="muted">${t(lang, 'errorCode')}: <code id="error-code">${code}</code></p>
<p><a class="button" href="/">${t(lang, 'home')}</a></p>`,
  );
}
