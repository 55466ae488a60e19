/** Page rendering shared by the provider's own pages and the interaction pages. */
export { CONTACT, INFO_PAGES } from './content.ts';
export { hasMessage, type Lang, type MessageKey, pickLang, t, useTimeZone, vnDate, vnDateTime } from './i18n.ts';
export { errorPage, type Html, html, langLink, page } from './layout.ts';
