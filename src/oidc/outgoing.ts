/**
 * Requests oidc-provider makes itself (a portal's `jwks_uri`, the only URL it fetches here). oidc-provider sends them
 * through a dispatcher that refuses special-use addresses (loopback, private networks, link-local): a registered URL
 * cannot make a node call into its own network. Kept for every URL but one kind: a loopback URL (`localhost`,
 * `127.0.0.1`, `[::1]`), which registration accepts as a jwks_uri only outside production (a portal on the developer's
 * machine, a test's key server) and refuses in production. Such a request goes out without that dispatcher.
 */

type Fetch = (url: string, options: RequestInit) => Promise<Response>;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `fetch`, with oidc-provider's special-use-address filter left off for loopback URLs only. */
export const outgoingFetch: Fetch = (url, options) => {
  if (!LOOPBACK.has(new URL(url).hostname)) return fetch(url, options);
  const { dispatcher: _filter, ...rest } = options as RequestInit & { dispatcher?: unknown };
  return fetch(url, rest);
};
