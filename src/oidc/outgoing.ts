/**
 * Requests oidc-provider makes itself (a portal's `jwks_uri`, the only URL it fetches here). oidc-provider sends them
 * through a dispatcher that refuses special-use addresses (loopback, private networks, link-local): a registered URL
 * cannot make a node call into its own network. Kept for every URL but one kind: a loopback URL (`localhost`,
 * `127.0.0.1`, `[::1]`), which registration accepts as a jwks_uri only outside production (a portal on the developer's
 * machine, a test's key server) and refuses in production. Such a request goes out without that dispatcher.
 */

import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

type Fetch = (url: string, options: RequestInit) => Promise<Response>;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `fetch`, with oidc-provider's special-use-address filter left off for loopback URLs only. */
export const outgoingFetch: Fetch = (url, options) => {
  if (!LOOPBACK.has(new URL(url).hostname)) return fetch(url, options);
  const { dispatcher: _filter, ...rest } = options as RequestInit & { dispatcher?: unknown };
  return fetch(url, rest);
};

/**
 * Addresses a portal's URL must never make a node call: this host, private networks, link-local (cloud metadata),
 * carrier-grade NAT, benchmarking, multicast and reserved ranges, IPv6 unique-local and link-local (an IPv4-mapped
 * address is judged by its IPv4 address).
 */
const SPECIAL_USE = new net.BlockList();
for (const [address, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  SPECIAL_USE.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  SPECIAL_USE.addSubnet(address, prefix, 'ipv6');

/** Whether an IP address is one a portal's URL must not reach. */
export function isSpecialUse(address: string): boolean {
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by its IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return SPECIAL_USE.check(mapped, 'ipv4');
  return SPECIAL_USE.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

const refusal = (host: string) =>
  Object.assign(new Error(`refused: ${host} is a special-use address`), { code: 'ESPECIALUSE' });

/** DNS resolution that refuses special-use answers (checked on the address actually connected to). */
const guardedLookup = ((host: string, options: dns.LookupOptions, cb: (...a: unknown[]) => void) =>
  dns.lookup(host, options, (err, address, family) => {
    if (err) return cb(err, address, family);
    const all = Array.isArray(address) ? address : [{ address, family }];
    if (all.some((a) => isSpecialUse(a.address))) return cb(refusal(host));
    cb(null, address, family);
  })) as unknown as net.LookupFunction;

/**
 * POSTs a form to a portal (back-channel logout) and answers its status. The address it connects to is checked:
 * a special-use address is refused (a name resolving to one, or an IP literal), so a registered URL cannot make a node
 * call into its own network; loopback names (`localhost`, `127.0.0.1`, `[::1]`) pass, as in `outgoingFetch`
 * (registration accepts them only outside production). No redirects are followed.
 */
export function postForm(url: string, body: string, timeoutMs: number): Promise<number> {
  const u = new URL(url);
  const loopback = LOOPBACK.has(u.hostname);
  const literal = u.hostname.replace(/^\[|\]$/g, '');
  if (!loopback && net.isIP(literal) && isSpecialUse(literal)) return Promise.reject(refusal(literal));
  const send = u.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        signal: AbortSignal.timeout(timeoutMs),
        ...(loopback ? {} : { lookup: guardedLookup }),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
