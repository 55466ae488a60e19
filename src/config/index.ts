/**
 * The only reader of `process.env`. Every setting of dinhdanh is declared here once: its meaning, unit, default and
 * validation rule. `loadConfig` reports every problem at once, one line per variable, and the process exits before
 * it listens. The README's configuration table is checked against `describeConfig()` by a test.
 */
import path from 'node:path';
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const httpUrl = z
  .string()
  .refine((v) => URL.canParse(v) && ['http:', 'https:'].includes(new URL(v).protocol), 'must be an http(s) URL')
  .refine((v) => !URL.canParse(v) || (!new URL(v).search && !new URL(v).hash), 'must have no query or fragment')
  .transform((v) => v.replace(/\/+$/, ''));

interface Field {
  /** What the setting means, its unit and any security note. */
  doc: string;
  /** Default as written in the environment; undefined means "unset" (optional or derived). */
  default?: string;
  schema: z.ZodType;
}

/** Every environment variable dinhdanh reads. Order is the README table's order. */
export const fields = {
  NODE_ENV: {
    doc: '`production` turns warnings about development shortcuts into start-up errors.',
    default: 'development',
    schema: z.enum(['development', 'production', 'test']),
  },
  PORT: { doc: 'TCP port the HTTP server listens on (0 picks a free port).', default: '3000', schema: int(0, 65535) },
  HOST: {
    doc: 'Address to listen on. `0.0.0.0` in containers; loopback by default.',
    default: '127.0.0.1',
    schema: z.string().min(1, 'must not be empty'),
  },
  ISSUER: {
    doc: 'Public issuer URL (as portals see it). Default `http://localhost:$PORT`. Must be https in production.',
    schema: httpUrl,
  },
  DATABASE_URL: {
    doc: 'External PostgreSQL (`postgres://user:pass@host:port/db`). Unset: an embedded PostgreSQL in DATA_DIR.',
    schema: z
      .string()
      .refine(
        (v) => URL.canParse(v) && ['postgres:', 'postgresql:'].includes(new URL(v).protocol),
        'must be a postgres:// URL',
      ),
  },
  DATA_DIR: {
    doc: 'Folder for the embedded PostgreSQL data and its generated password (created 0700).',
    default: './data',
    schema: z.string().min(1, 'must not be empty'),
  },
  EMBEDDED_PG_PORT: {
    doc: 'Loopback port of the embedded PostgreSQL; 0 picks a free one on first start and remembers it.',
    default: '0',
    schema: int(0, 65535),
  },
  DB_POOL_SIZE: { doc: 'Connections per process to PostgreSQL.', default: '10', schema: int(1, 200) },
  DB_CONNECT_TIMEOUT_MS: {
    doc: 'Longest wait for PostgreSQL to accept a new connection; then the request gets 503.',
    default: '2000',
    schema: int(100, 60000),
  },
  DB_ACQUIRE_TIMEOUT_MS: {
    doc: 'Longest wait for a connection from the pool (a saturated pool or a database that does not answer); then 503.',
    default: '3000',
    schema: int(100, 60000),
  },
  DB_STATEMENT_TIMEOUT_MS: {
    doc: "statement_timeout of the service's sessions (a held lock, a slow disk); the client gives up 1 s later (a paused server). Then 503.",
    default: '5000',
    schema: int(100, 600000),
  },
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: {
    doc: "idle_in_transaction_session_timeout of the service's sessions: PostgreSQL ends a transaction left open this long.",
    default: '10000',
    schema: int(100, 600000),
  },
  SHUTDOWN_GRACE_SECONDS: {
    doc: 'On SIGTERM/SIGINT, `/readyz` turns 503 at once and the node keeps serving this long (so the load balancer sees it) before it stops accepting.',
    default: '5',
    schema: int(0, 300),
  },
  SHUTDOWN_TIMEOUT_SECONDS: {
    doc: 'Then the longest wait for requests in flight (and the audit queue) before the node exits.',
    default: '30',
    schema: int(1, 600),
  },
  MASTER_KEY: {
    doc: 'Master key (32 bytes, base64) that encrypts signing keys at rest. Overrides MASTER_KEY_FILE. Secret.',
    schema: z.string().refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes encoded in base64'),
  },
  MASTER_KEY_FILE: {
    doc: 'File holding the master key; created 0600 on first start when missing (not in production).',
    default: './keys/master.key',
    schema: z.string().min(1, 'must not be empty'),
  },
  COOKIE_KEYS: {
    doc: 'Comma-separated cookie signing keys, newest first, each >= 32 chars. Unset: derived from the master key.',
    schema: z
      .string()
      .transform((v) => v.split(',').map((k) => k.trim()))
      .refine((keys) => keys.every((k) => k.length >= 32), 'every key must be at least 32 characters'),
  },
  LOG_LEVEL: {
    doc: 'pino log level.',
    default: 'info',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  },
  TRUST_PROXY: {
    doc: 'Trust X-Forwarded-* headers (set behind a load balancer that sets them).',
    default: 'false',
    schema: bool,
  },
  METRICS_PORT: {
    doc: 'Port of the Prometheus `/metrics` listener, separate from PORT (0 picks a free port). Unset: no metrics listener.',
    schema: int(0, 65535),
  },
  METRICS_HOST: {
    doc: 'Address of the metrics listener. Loopback by default: the metrics describe how logins fail, keep them off the public network.',
    default: '127.0.0.1',
    schema: z.string().min(1, 'must not be empty'),
  },
  ARGON2_MEMORY_KIB: { doc: 'argon2id memory cost in KiB (OWASP: 19456).', default: '19456', schema: int(8, 4194304) },
  ARGON2_TIME_COST: { doc: 'argon2id iterations (OWASP: 2).', default: '2', schema: int(1, 100) },
  ARGON2_PARALLELISM: { doc: 'argon2id lanes (OWASP: 1).', default: '1', schema: int(1, 16) },
  DEMO_SEED: {
    doc: '`auto`: seed demo residents, a citizen and a portal into an empty embedded database. `always`, `never`.',
    default: 'auto',
    schema: z.enum(['auto', 'always', 'never']),
  },
  SESSION_TTL_SECONDS: { doc: 'Absolute lifetime of an SSO session.', default: '28800', schema: int(60, 2592000) },
  ACCESS_TOKEN_TTL_SECONDS: { doc: 'Access token lifetime.', default: '600', schema: int(30, 86400) },
  ID_TOKEN_TTL_SECONDS: { doc: 'ID token lifetime.', default: '600', schema: int(30, 86400) },
  REFRESH_TOKEN_TTL_SECONDS: { doc: 'Refresh token lifetime.', default: '86400', schema: int(60, 31536000) },
  CONSENT_TTL_DAYS: {
    doc: "A citizen's consent to a portal is remembered this long after they last signed in to it (then asked again; revocable on /account at any time). Refresh tokens never outlive it.",
    default: '365',
    schema: int(1, 3650),
  },
  LOGIN_MAX_FAILURES: {
    doc: 'Consecutive failed logins for one personal ID before a temporary lock.',
    default: '5',
    schema: int(1, 100),
  },
  LOGIN_LOCK_SECONDS: {
    doc: 'First lock duration; doubles with each further lock within 24 h (capped at 24 h). Never permanent.',
    default: '900',
    schema: int(1, 86400),
  },
  LOGIN_IP_FAILURES: {
    doc: 'Personal IDs that may fail to log in from one client IP per 15 minutes (distinct IDs: citizens behind one NAT mistyping count once each; a client trying many IDs is blocked).',
    default: '100',
    schema: int(1, 1000000),
  },
  TIME_ZONE: {
    doc: 'IANA time zone in which pages show times (sign-in history, sessions, reset notices).',
    default: 'Asia/Ho_Chi_Minh',
    schema: z.string().refine((v) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: v });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone such as Asia/Ho_Chi_Minh'),
  },
  IN_PERSON_VALID_HOURS: {
    doc: "An in-person check (an officer's activation code, redeemed) lets the session that redeemed it enroll a second factor for this long, once.",
    default: '24',
    schema: int(1, 720),
  },
  SMS_GATEWAY_URL: {
    doc: 'HTTP SMS gateway that delivers one-time codes to registered phones (one JSON POST per message). Unset: messages go to the `sms_outbox` table (`dinhdanh sms outbox`); refused in production.',
    schema: httpUrl,
  },
  SMS_GATEWAY_AUTHORIZATION: {
    doc: 'The Authorization header sent to the gateway (`Bearer ...` or `Basic ...`). Secret.',
    schema: z.string().min(1, 'must not be empty'),
  },
  SMS_GATEWAY_BODY: {
    doc: 'JSON body template; in its strings `{{to}}` (+84...), `{{to_digits}}` (84...), `{{text}}`, `{{sender}}`, `{{purpose}}` are replaced.',
    default: '{"to":"{{to}}","text":"{{text}}","sender":"{{sender}}"}',
    schema: z.string().refine((v) => {
      try {
        const parsed = JSON.parse(v) as unknown;
        return !!parsed && typeof parsed === 'object' && v.includes('{{text}}') && v.includes('{{to');
      } catch {
        return false;
      }
    }, 'must be a JSON object template containing {{text}} and {{to}} or {{to_digits}}'),
  },
  SMS_SENDER: {
    doc: 'Sender name (brandname) passed to the gateway.',
    default: 'DINHDANH',
    schema: z.string().min(1).max(11),
  },
  SMS_GATEWAY_TIMEOUT_MS: {
    doc: 'Longest wait for the gateway to accept a message; then the page answers 503 with Retry-After.',
    default: '5000',
    schema: int(100, 60000),
  },
  AUDIT_RETENTION_DAYS: {
    doc: 'Audit events older than this may be archived with `dinhdanh audit archive` (0: keep forever).',
    default: '400',
    schema: int(0, 36500),
  },
  ACR_LEVEL1: { doc: '`acr` value for level 1 (password).', default: 'urn:dinhdanh:loa:1', schema: z.string().min(1) },
  ACR_LEVEL2: {
    doc: '`acr` value for level 2 (in-person verified, password + TOTP).',
    default: 'urn:dinhdanh:loa:2',
    schema: z.string().min(1),
  },
  ACR_ALIASES: {
    doc: 'Other `acr` values portals may send, as `value=level` pairs, comma-separated (e.g. `LoA1=1,LoA2=2`). A portal that asks for acr values gets one of them back, as it spelled it (the highest its login satisfies); otherwise ACR_LEVEL1/2.',
    default: 'LoA1=1,LoA2=2',
    schema: z
      .string()
      .regex(/^([^=,\s]+=[12])(,[^=,\s]+=[12])*$/, 'must be value=1 or value=2 pairs separated by commas'),
  },
  PHISHING_RESISTANT_ACR: {
    doc: '`acr` value of the phishing-resistant level: level 2 proven with a passkey (user-verified, registered at level 2). Only a passkey sign-in satisfies it; a portal requires it with an essential `acr` claim or by registration (`--require-phishing-resistant`), and asks for it with `acr_values` (best effort). Listed in discovery. Must differ from ACR_LEVEL1/2.',
    default: 'urn:dinhdanh:loa:2:phishing-resistant',
    schema: z.string().min(1).regex(/^\S+$/, 'must have no spaces'),
  },
  PHISHING_RESISTANT_DEVICE_BOUND: {
    doc: '`true`: only device-bound passkeys (not backup-eligible, amr `hwk`) reach the phishing-resistant level; synced ones (`swk`) still give level 2.',
    default: 'false',
    schema: bool,
  },
  PAIRWISE_SECRET: {
    doc: 'Secret for pairwise `sub` values (>= 32 chars). Unset: derived from the master key. Changing it changes every pairwise `sub`: a deliberate, announced act.',
    schema: z.string().min(32, 'must be at least 32 characters'),
  },
  KEY_PUBLISH_LEAD_SECONDS: {
    doc: 'A new signing key is published in JWKS at least this long before it signs (longer than any JWKS cache).',
    default: '86400',
    schema: int(0, 31536000),
  },
  KEY_RETENTION_SECONDS: {
    doc: 'A retired key stays published this long. Default: longest token lifetime + JWKS max-age.',
    schema: int(0, 31536000),
  },
  KEY_ROTATION_DAYS: {
    doc: 'Scheduled rotation: an active key older than this gets a successor.',
    default: '90',
    schema: int(1, 3650),
  },
  KEY_CHECK_SECONDS: {
    doc: 'Every node checks the key set this often (a scheduled transition runs at the first check after it is due); changes also arrive by NOTIFY.',
    default: '5',
    schema: int(1, 10),
  },
  JWKS_MAX_AGE_SECONDS: {
    doc: "Cache-Control max-age of the JWKS and discovery documents (both with an ETag: portals revalidate with If-None-Match); also part of KEY_RETENTION_SECONDS's default.",
    default: '600',
    schema: int(0, 86400),
  },
  SESSION_IDLE_SECONDS: {
    doc: 'An SSO session unused for this long ends (it never outlives SESSION_TTL_SECONDS).',
    default: '3600',
    schema: int(60, 2592000),
  },
  BACKCHANNEL_RETRY_SECONDS: {
    doc: 'A back-channel logout a portal did not accept is retried with backoff for this long, then abandoned (audited).',
    default: '120',
    schema: int(5, 3600),
  },
  WORKER_INTERVAL_MS: {
    doc: 'How often each node delivers queued back-channel logouts and carries out session terminations.',
    default: '1000',
    schema: int(100, 60000),
  },
  RESOURCE_SERVERS: {
    doc: 'APIs that accept access tokens from dinhdanh (RFC 8707), JSON: `[{"indicator":"https://api.example.vn","scope":"read write","format":"jwt"}]`; format `jwt` (default) or `opaque`. Portals must also be registered with `--resource`.',
    default: '[]',
    schema: z
      .string()
      .transform((v, ctx) => {
        try {
          return JSON.parse(v) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON array' });
          return z.NEVER;
        }
      })
      .pipe(
        z.array(
          z.object({
            indicator: z
              .string()
              .refine((v) => URL.canParse(v) && !new URL(v).hash, 'indicator must be an absolute URL without fragment'),
            scope: z.string().min(1, 'scope must not be empty'),
            format: z.enum(['jwt', 'opaque']).default('jwt'),
          }),
          'must be a JSON array of {indicator, scope, format}',
        ),
      ),
  },
  PURGE_INTERVAL_SECONDS: {
    doc: 'How often expired protocol rows (codes, tokens, sessions) are deleted.',
    default: '300',
    schema: int(5, 86400),
  },
} satisfies Record<string, Field>;

type FieldName = keyof typeof fields;
/** Parsed values by variable: a field with a default always has one (the default goes through the same schema). */
type Raw = {
  [K in FieldName]:
    | z.output<(typeof fields)[K]['schema']>
    | ((typeof fields)[K] extends { default: string } ? never : undefined);
};

/** Validated configuration, the only shape the rest of the code sees. */
export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  issuer: string;
  databaseUrl: string | null;
  dataDir: string;
  embeddedPgPort: number;
  dbPoolSize: number;
  /** Database timeouts of the service (ms). */
  db: {
    connectTimeoutMs: number;
    acquireTimeoutMs: number;
    statementTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
  };
  shutdown: { graceSeconds: number; timeoutSeconds: number };
  masterKey: string | null;
  masterKeyFile: string;
  cookieKeys: string[] | null;
  logLevel: string;
  trustProxy: boolean;
  /** The Prometheus listener, or null (METRICS_PORT unset) for none. */
  metrics: { host: string; port: number } | null;
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  demoSeed: 'auto' | 'always' | 'never';
  ttl: {
    session: number;
    sessionIdle: number;
    accessToken: number;
    idToken: number;
    refreshToken: number;
    /** Consent (the Grant) lifetime in seconds, renewed at each sign-in to the portal. */
    consent: number;
  };
  backchannelRetrySeconds: number;
  workerIntervalMs: number;
  purgeIntervalSeconds: number;
  loginLimits: { maxFailures: number; lockSeconds: number; ipFailures: number };
  auditRetentionDays: number;
  /** How long a redeemed in-person check may be used to enroll a second factor (ms). */
  inPersonValidMs: number;
  /** IANA time zone of the times shown on pages. */
  timeZone: string;
  /** The SMS gateway, or null for the development outbox. */
  sms: { url: string; authorization: string | null; bodyTemplate: string; sender: string; timeoutMs: number } | null;
  /** acr value by level, and every accepted value mapped to its level. */
  acr: {
    level1: string;
    level2: string;
    /** The phishing-resistant value (level 3 in `levels`: level 2 proven with a passkey). */
    phishingResistant: string;
    /** Only device-bound passkeys reach the phishing-resistant level. */
    deviceBoundOnly: boolean;
    levels: Record<string, 1 | 2 | 3>;
  };
  pairwiseSecret: string | null;
  keys: {
    leadSeconds: number;
    retentionSeconds: number;
    rotationDays: number;
    checkSeconds: number;
    jwksMaxAge: number;
  };
  resourceServers: { indicator: string; scope: string; format: 'jwt' | 'opaque' }[];
}

/** Thrown when the environment is invalid; `problems` holds one line per variable. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.problems = problems;
  }
}

const show = (v: string) => (v.length > 40 ? `${v.slice(0, 37)}...` : v);

/** Reads and validates configuration from `env` (default: process.env). Throws ConfigError listing all problems. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const raw = {} as Record<string, unknown>;
  for (const [name, field] of Object.entries(fields) as [FieldName, Field][]) {
    const given = env[name];
    // Unset or empty: the default, parsed by the same schema (so every field with a default gets a value).
    const value = given === undefined || given === '' ? field.default : given;
    if (value === undefined) continue;
    const parsed = field.schema.safeParse(value);
    if (parsed.success) raw[name] = parsed.data;
    else {
      const secret = ['MASTER_KEY', 'COOKIE_KEYS', 'DATABASE_URL', 'SMS_GATEWAY_AUTHORIZATION'].includes(name);
      const message = parsed.error.issues[0]?.message ?? 'is invalid';
      problems.push(`${name}: ${message}${secret ? '' : ` (got "${show(value)}")`}`);
    }
  }
  // The production rules read the values that parsed; a field that did not is already a problem.
  const known = raw as Partial<Raw>;
  if (known.NODE_ENV === 'production') {
    // ISSUER's default (http://localhost:$PORT) is never https.
    if (!known.ISSUER?.startsWith('https://')) problems.push('ISSUER: must be an https URL when NODE_ENV=production');
    if (!known.DATABASE_URL) problems.push('DATABASE_URL: must be set when NODE_ENV=production (no embedded database)');
    if (!known.MASTER_KEY && env.MASTER_KEY_FILE === undefined)
      problems.push('MASTER_KEY: set MASTER_KEY or MASTER_KEY_FILE when NODE_ENV=production');
    if (!known.SMS_GATEWAY_URL)
      problems.push('SMS_GATEWAY_URL: must be set when NODE_ENV=production (codes must reach the phone, not a table)');
  }
  if (known.PHISHING_RESISTANT_ACR && [known.ACR_LEVEL1, known.ACR_LEVEL2].includes(known.PHISHING_RESISTANT_ACR))
    problems.push('PHISHING_RESISTANT_ACR: must differ from ACR_LEVEL1 and ACR_LEVEL2');
  if (problems.length) throw new ConfigError(problems);
  // No problem: every field with a default has its value. Only settings without one are written below (`?? null`
  // for "unset", or a default derived from other settings).
  const r = raw as Raw;
  return {
    env: r.NODE_ENV,
    port: r.PORT,
    host: r.HOST,
    issuer: r.ISSUER ?? `http://localhost:${r.PORT}`,
    databaseUrl: r.DATABASE_URL ?? null,
    dataDir: path.resolve(r.DATA_DIR),
    embeddedPgPort: r.EMBEDDED_PG_PORT,
    dbPoolSize: r.DB_POOL_SIZE,
    db: {
      connectTimeoutMs: r.DB_CONNECT_TIMEOUT_MS,
      acquireTimeoutMs: r.DB_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: r.DB_STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: r.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
    shutdown: { graceSeconds: r.SHUTDOWN_GRACE_SECONDS, timeoutSeconds: r.SHUTDOWN_TIMEOUT_SECONDS },
    masterKey: r.MASTER_KEY ?? null,
    masterKeyFile: path.resolve(r.MASTER_KEY_FILE),
    cookieKeys: r.COOKIE_KEYS ?? null,
    logLevel: r.LOG_LEVEL,
    trustProxy: r.TRUST_PROXY,
    metrics: r.METRICS_PORT === undefined ? null : { host: r.METRICS_HOST, port: r.METRICS_PORT },
    argon2: { memoryCost: r.ARGON2_MEMORY_KIB, timeCost: r.ARGON2_TIME_COST, parallelism: r.ARGON2_PARALLELISM },
    demoSeed: r.DEMO_SEED,
    ttl: {
      session: r.SESSION_TTL_SECONDS,
      sessionIdle: r.SESSION_IDLE_SECONDS,
      accessToken: r.ACCESS_TOKEN_TTL_SECONDS,
      idToken: r.ID_TOKEN_TTL_SECONDS,
      refreshToken: r.REFRESH_TOKEN_TTL_SECONDS,
      consent: r.CONSENT_TTL_DAYS * 86400,
    },
    purgeIntervalSeconds: r.PURGE_INTERVAL_SECONDS,
    backchannelRetrySeconds: r.BACKCHANNEL_RETRY_SECONDS,
    workerIntervalMs: r.WORKER_INTERVAL_MS,
    loginLimits: {
      maxFailures: r.LOGIN_MAX_FAILURES,
      lockSeconds: r.LOGIN_LOCK_SECONDS,
      ipFailures: r.LOGIN_IP_FAILURES,
    },
    auditRetentionDays: r.AUDIT_RETENTION_DAYS,
    inPersonValidMs: r.IN_PERSON_VALID_HOURS * 3600_000,
    timeZone: r.TIME_ZONE,
    sms: r.SMS_GATEWAY_URL
      ? {
          url: r.SMS_GATEWAY_URL,
          authorization: r.SMS_GATEWAY_AUTHORIZATION ?? null,
          bodyTemplate: r.SMS_GATEWAY_BODY,
          sender: r.SMS_SENDER,
          timeoutMs: r.SMS_GATEWAY_TIMEOUT_MS,
        }
      : null,
    acr: acrConfig(
      r.ACR_LEVEL1,
      r.ACR_LEVEL2,
      r.ACR_ALIASES,
      r.PHISHING_RESISTANT_ACR,
      r.PHISHING_RESISTANT_DEVICE_BOUND,
    ),
    pairwiseSecret: r.PAIRWISE_SECRET ?? null,
    resourceServers: r.RESOURCE_SERVERS,
    keys: {
      leadSeconds: r.KEY_PUBLISH_LEAD_SECONDS,
      retentionSeconds:
        r.KEY_RETENTION_SECONDS ??
        Math.max(r.ID_TOKEN_TTL_SECONDS, r.ACCESS_TOKEN_TTL_SECONDS) + r.JWKS_MAX_AGE_SECONDS,
      rotationDays: r.KEY_ROTATION_DAYS,
      checkSeconds: r.KEY_CHECK_SECONDS,
      jwksMaxAge: r.JWKS_MAX_AGE_SECONDS,
    },
  };
}

function acrConfig(
  level1: string,
  level2: string,
  aliases: string,
  phishingResistant: string,
  deviceBoundOnly: boolean,
): Config['acr'] {
  const levels: Record<string, 1 | 2 | 3> = { [level1]: 1, [level2]: 2, [phishingResistant]: 3 };
  for (const pair of aliases.split(',').filter(Boolean)) {
    const [value, level] = pair.split('=');
    if (value && !(value in levels)) levels[value] = level === '2' ? 2 : 1;
  }
  return { level1, level2, phishingResistant, deviceBoundOnly, levels };
}

/** The documented fields, for the README table and `dinhdanh config`. */
export function describeConfig(): { name: string; default: string; doc: string }[] {
  return Object.entries(fields).map(([name, f]) => ({
    name,
    default: (f as Field).default ?? '',
    doc: (f as Field).doc,
  }));
}
