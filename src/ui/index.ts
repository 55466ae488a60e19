/** Page rendering shared by the provider's own pages and the interaction pages. */
export { hasMessage, type Lang, type MessageKey, pickLang, t, vnDateTime } from './i18n.ts';
export { errorPage, type Html, html, langLink, page } from './layout.ts';
