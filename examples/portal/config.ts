/**
 * The portal's configuration, from the environment: one program, as many portals as there are configurations.
 * Every problem is reported at once, before the portal listens.
 */

/** What one portal instance needs. */
export interface PortalConfig {
  /** Shown in the page header (PORTAL_NAME). */
  name: string;
  /** TCP port (PORT, default 3001). */
  port: number;
  /** Address to listen on (HOST, default 127.0.0.1). */
  host: string;
  /** The portal's own public origin as the browser sees it (PORTAL_URL, default http://localhost:PORT). */
  baseUrl: string;
  /** The dinhdanh issuer (ISSUER), e.g. http://localhost:3000 or https://dinhdanh.gov.vn. */
  issuer: string;
  /** Registered client_id (CLIENT_ID). */
  clientId: string;
  /** Client secret printed once by `dinhdanh clients add` (CLIENT_SECRET). Unset: a public client (PKCE only). */
  clientSecret: string | undefined;
  /** Lowest level of assurance this portal accepts (MIN_LEVEL, 1 or 2). */
  minLevel: 1 | 2;
  /** The `acr` value that means level 2 at the provider (LEVEL2_ACR, default urn:dinhdanh:loa:2). */
  level2Acr: string;
}

/** Thrown with every configuration problem, one line each. */
export class PortalConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid portal configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True when `url` is plain http on this machine: the only place an example may skip TLS. */
export const isLocalHttp = (url: string): boolean => {
  const u = new URL(url);
  return u.protocol === 'http:' && LOOPBACK.has(u.hostname);
};

/** Reads and validates the configuration. */
export function readPortalConfig(env: NodeJS.ProcessEnv = process.env): PortalConfig {
  const problems: string[] = [];
  const port = Number(env.PORT ?? '3001');
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push('PORT: must be a port number (1-65535)');
  const url = (name: string, value: string | undefined): string => {
    if (!value) {
      problems.push(`${name}: required`);
      return '';
    }
    if (!URL.canParse(value)) {
      problems.push(`${name}: not a URL: ${value}`);
      return '';
    }
    const u = new URL(value);
    if (u.protocol !== 'https:' && !isLocalHttp(value))
      problems.push(`${name}: must be https (http only on localhost)`);
    return value;
  };
  // The issuer is compared exactly with the provider's `iss`: kept as given. The portal's own URL loses a final "/".
  const issuer = url('ISSUER', env.ISSUER);
  const baseUrl = url('PORTAL_URL', env.PORTAL_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const clientId = env.CLIENT_ID ?? '';
  if (!clientId) problems.push('CLIENT_ID: required (from `dinhdanh clients add`)');
  const minLevel = Number(env.MIN_LEVEL ?? '1');
  if (minLevel !== 1 && minLevel !== 2) problems.push('MIN_LEVEL: must be 1 or 2');
  if (problems.length) throw new PortalConfigError(problems);
  return {
    name: env.PORTAL_NAME || 'Cổng dịch vụ',
    port,
    host: env.HOST || '127.0.0.1',
    baseUrl,
    issuer,
    clientId,
    clientSecret: env.CLIENT_SECRET || undefined,
    minLevel: minLevel as 1 | 2,
    level2Acr: env.LEVEL2_ACR || 'urn:dinhdanh:loa:2',
  };
}
