/**
 * Keeps the running provider in step with the signing keys in the database, on every node, without a restart.
 *
 * A key change made by any node or by the CLI is announced with NOTIFY and also found by polling (a bounded delay
 * even if a notification is lost). The host then builds a new provider with the new active keys and swaps it in
 * atomically: requests in flight finish on the provider they started on; all protocol state lives in PostgreSQL, so
 * the two instances are interchangeable. The JWKS document (staged, active and retired public keys) is served
 * pre-serialized, with an ETag and Cache-Control max-age.
 *
 * Each interval costs one statement (the fingerprint); the scheduled transitions' transaction runs only once one is
 * due by the loaded key set.
 */
import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { JWK } from 'oidc-provider';

/** A reference to the current provider; read `current` at each use, never keep it. */
export interface ProviderRef {
  readonly current: Provider;
}

/** Key material as the host needs it. */
export interface HostKeys {
  signing: JWK[];
  jwks: { keys: JWK[] };
  /**
   * When the next scheduled key transition falls due (epoch ms; null: none): `tick` is skipped before then. Absent:
   * unknown, and `tick` runs every interval.
   */
  nextTransitionAt?: number | null;
}

/** The JWKS document, ready to send. */
export interface JwksDocument {
  body: string;
  etag: string;
}

export interface ProviderHost extends ProviderRef {
  jwks(): JwksDocument;
  /** Reloads when the key set changed since the last load; true when it swapped. */
  refresh(): Promise<boolean>;
  stop(): Promise<void>;
}

export interface HostOptions {
  build: (signing: JWK[]) => Provider;
  load: () => Promise<HostKeys>;
  fingerprint: () => Promise<string>;
  /** Subscribes to change notifications; returns the subscription. */
  listen?: (onChange: () => void) => Promise<{ stop(): Promise<void> }>;
  /**
   * Runs on each tick before the check (scheduled key transitions), when the loaded keys say one is due (or do not
   * say): an idle node does not open a transaction every interval for nothing.
   */
  tick?: () => Promise<unknown>;
  intervalMs: number;
  onError: (err: unknown) => void;
  onSwap?: (provider: Provider) => void;
}

/** A serialized public document with its strong ETag (a hash of the body). */
export function publicDocument(value: unknown): JwksDocument {
  const body = JSON.stringify(value);
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

const document = (keys: HostKeys) => publicDocument(keys.jwks);

/** Loads keys, builds the first provider and starts watching. */
export async function startProviderHost(opts: HostOptions): Promise<ProviderHost> {
  let fingerprint = await opts.fingerprint();
  let keys = await opts.load();
  let current = opts.build(keys.signing);
  let doc = document(keys);
  opts.onSwap?.(current);
  let running: Promise<boolean> | null = null;

  async function reload(): Promise<boolean> {
    const now = await opts.fingerprint();
    if (now === fingerprint) return false;
    const next = await opts.load();
    const provider = opts.build(next.signing);
    // Swap both together: a node never publishes a key set that does not include its signing keys.
    keys = next;
    doc = document(next);
    current = provider;
    fingerprint = now;
    opts.onSwap?.(provider);
    return true;
  }

  const refresh = () => {
    running ??= reload().finally(() => {
      running = null;
    });
    return running;
  };

  // The due time always belongs to the key set loaded last: a transition made elsewhere changes the fingerprint, and
  // the set is reloaded within one interval (at once by NOTIFY). Past due and still not done (another node held the
  // lock): the tick runs again next interval, as it used to every interval.
  const due = () => keys.nextTransitionAt === undefined || (keys.nextTransitionAt ?? Infinity) <= Date.now();
  const timer = setInterval(() => {
    Promise.resolve(due() ? opts.tick?.() : undefined)
      .then(refresh)
      .catch(opts.onError);
  }, opts.intervalMs);
  timer.unref();
  const subscription = opts.listen ? await opts.listen(() => void refresh().catch(opts.onError)) : undefined;

  return {
    get current() {
      return current;
    },
    jwks: () => doc,
    refresh,
    async stop() {
      clearInterval(timer);
      await subscription?.stop();
    },
  };
}
