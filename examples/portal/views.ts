/**
 * The portal's pages: Vietnamese first, English beneath. No script; markup built with the `html` tag, which escapes
 * every interpolated value; the style sheet is served from /style.css so the CSP needs no inline allowance.
 */
import { html, type SafeHtml } from '@remix-run/html-template';
import type { PortalConfig } from './config.ts';
import type { PortalUser } from './sessions.ts';

/** The style sheet (served at /style.css). */
export const STYLE = `body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1c1c1c}
header{background:#a5161d;color:#fff;padding:.8rem 1.2rem;font-weight:600}
main{max-width:40rem;margin:1.5rem auto;background:#fff;padding:1.5rem;border-radius:6px}
.en{color:#555;font-size:.9em}
.button,button{display:inline-block;background:#a5161d;color:#fff;border:0;border-radius:4px;padding:.7rem 1.1rem;
font-size:1rem;text-decoration:none;cursor:pointer}
button.secondary{background:#555}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
dt{font-weight:600}dd{margin:0;word-break:break-all}
.notice{background:#e8f4ea;padding:.6rem .8rem;border-radius:4px}
.error{background:#fdecea;padding:.6rem .8rem;border-radius:4px}
code{font-size:.95em}`;

function page(config: PortalConfig, title: string, body: SafeHtml): string {
  return String(html`<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${config.name}</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header>${config.name}</header>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`);
}

const LOGIN_BUTTON = html`<p><a class="button" id="login" href="/login">Đăng nhập bằng định danh điện tử</a></p>
<p class="en">Sign in with your national electronic identity.</p>`;

/** Home page for a visitor who is not signed in. `notice` follows a completed logout. */
export function signedOutPage(config: PortalConfig, notice?: 'logged_out'): string {
  const level =
    config.minLevel === 2
      ? html`<p>Cổng này yêu cầu tài khoản định danh điện tử <strong>mức 2</strong>.</p><p class="en">This portal requires a level 2 e-ID account.</p>`
      : '';
  const done =
    notice === 'logged_out'
      ? html`<p class="notice" id="logged-out">Bạn đã đăng xuất. <span class="en">You have signed out.</span></p>`
      : '';
  return page(config, 'Chào mừng', html`${done}<p id="status">Bạn chưa đăng nhập.</p>${level}${LOGIN_BUTTON}`);
}

const ACR_TEXT: Record<string, string> = {
  'urn:dinhdanh:loa:1': 'Mức 1 — mật khẩu (level 1: password)',
  'urn:dinhdanh:loa:2': 'Mức 2 — mật khẩu và mã xác thực (level 2: password and one-time code)',
};
const AMR_TEXT: Record<string, string> = {
  pwd: 'mật khẩu (password)',
  otp: 'mã dùng một lần (one-time code)',
  mfa: 'nhiều yếu tố (multi-factor)',
};

/** Home page for a signed-in citizen: what the portal received, and a logout button. */
export function signedInPage(config: PortalConfig, user: PortalUser): string {
  const name = typeof user.profile.name === 'string' ? user.profile.name : '';
  const rows: [string, string][] = [
    ['Họ và tên', name || '—'],
    ['Ngày sinh', typeof user.profile.birthdate === 'string' ? user.profile.birthdate : '—'],
    ['Mức định danh (acr)', `${user.acr ?? '—'}${user.acr && ACR_TEXT[user.acr] ? ` · ${ACR_TEXT[user.acr]}` : ''}`],
    ['Phương thức (amr)', user.amr.map((m) => `${m}${AMR_TEXT[m] ? ` · ${AMR_TEXT[m]}` : ''}`).join(', ') || '—'],
    ['Mã định danh tại cổng này (sub)', user.sub],
    ['Đăng nhập lúc', user.authTime ? new Date(user.authTime * 1000).toISOString() : '—'],
  ];
  return page(
    config,
    'Xin chào',
    html`<p id="status">Bạn đã đăng nhập${name ? html` với tên <strong id="name">${name}</strong>` : ''}.</p>
<p class="en">You are signed in. This is what the portal received from the national e-ID service:</p>
<dl>${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<form method="post" action="/logout"><button type="submit" id="logout">Đăng xuất</button></form>
<p class="en">Signing out here signs you out of every portal that uses the national e-ID.</p>`,
  );
}

const ERROR_TEXT: Record<string, [vi: string, en: string]> = {
  unmet_authentication_requirements: [
    'Cổng này yêu cầu tài khoản định danh điện tử mức 2. Tài khoản của bạn chưa đạt mức 2: hãy xác minh trực tiếp tại cơ quan công an, kích hoạt tài khoản và đăng ký ứng dụng xác thực, rồi đăng nhập lại.',
    'This portal requires a level 2 e-ID account. Yours is not level 2 yet: have it verified in person, activate it and enroll an authenticator app, then sign in again.',
  ],
  insufficient_level: [
    'Lần đăng nhập này chưa đạt mức 2 mà cổng yêu cầu. Hãy đăng nhập lại bằng mật khẩu và mã xác thực.',
    'This sign-in did not reach the level 2 this portal requires. Sign in again with your password and code.',
  ],
  access_denied: [
    'Bạn đã từ chối chia sẻ thông tin với cổng này, nên chưa thể đăng nhập. Bạn có thể thử lại bất cứ lúc nào.',
    'You declined to share your information with this portal, so you are not signed in. You can try again any time.',
  ],
  login_required: [
    'Bạn cần đăng nhập tại hệ thống định danh điện tử.',
    'You need to sign in at the national e-ID service.',
  ],
  session_expired: [
    'Phiên đăng nhập đã hết hạn hoặc không hợp lệ (có thể bạn đã mở nhiều cửa sổ). Hãy đăng nhập lại.',
    'The sign-in expired or is not valid (perhaps several windows were open). Please sign in again.',
  ],
  provider_unavailable: [
    'Không kết nối được với hệ thống định danh điện tử. Hãy thử lại sau ít phút.',
    'The national e-ID service cannot be reached. Please try again in a few minutes.',
  ],
};
const GENERIC: [string, string] = [
  'Không thể hoàn tất đăng nhập. Hãy quay lại trang chủ và thử lại.',
  'The sign-in could not be completed. Go back to the home page and try again.',
];

/** A clear error page for a failed login; shows the error code, never internals. */
export function errorPage(config: PortalConfig, code: string): string {
  const [vi, en] = ERROR_TEXT[code] ?? GENERIC;
  return page(
    config,
    'Chưa đăng nhập được',
    html`<p class="error" role="alert" id="error">${vi}</p><p class="en">${en}</p>
<p class="en">Mã lỗi (error code): <code id="error-code">${code}</code></p>
<p><a class="button" href="/">Về trang chủ</a></p>`,
  );
}
