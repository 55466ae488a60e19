/** A minimal cookie-keeping fetch for benchmark flows (one per simulated browser); follows no redirects itself. */
export function cookieFetch(): (url: string, init?: RequestInit) => Promise<Response> {
  const jar = new Map<string, string>();
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const k = pair!.slice(0, pair!.indexOf('='));
      jar.set(k, pair!.slice(k.length + 1));
    }
    return res;
  };
}
