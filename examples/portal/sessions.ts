/**
 * Server-side sessions, in memory, keyed by a random id that travels only in an HttpOnly SameSite=Lax cookie.
 * Claims and tokens never reach the browser. Back-channel logout finds sessions by the provider's `sid` (or `sub`).
 * A real portal keeps these in its own database or cache so that every instance sees the same sessions.
 */
import { randomBytes } from 'node:crypto';

/** An authorization request in flight: the checks to apply to its answer. */
export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  createdAt: number;
}

/** The signed-in citizen as this portal knows them. */
export interface PortalUser {
  /** Subject at this portal (pairwise: differs per sector, stable over time). */
  sub: string;
  /** Provider session id for this portal, from the ID token; back-channel logout names it. */
  sid: string | undefined;
  /** Level reached (`acr`) and the methods used (`amr`). */
  acr: string | undefined;
  amr: string[];
  /** Time of the citizen's authentication at the provider (seconds since epoch). */
  authTime: number | undefined;
  /** Claims from the userinfo endpoint (name, birthdate, ...). */
  profile: Record<string, unknown>;
  /** Kept only to send as id_token_hint at logout. */
  idToken: string;
}

/** One browser's session at the portal. */
export interface PortalSession {
  id: string;
  createdAt: number;
  pending?: PendingLogin;
  user?: PortalUser;
  /** The `state` sent with an RP-initiated logout, checked when the provider sends the browser back. */
  logoutState?: string;
}

/** Sessions of one portal instance. */
export class SessionStore {
  readonly #sessions = new Map<string, PortalSession>();
  readonly #ttlMs: number;
  readonly #pendingTtlMs: number;

  /** `ttlMs`: absolute session lifetime; `pendingTtlMs`: how long a login in flight may take. */
  constructor(ttlMs = 8 * 3600_000, pendingTtlMs = 10 * 60_000) {
    this.#ttlMs = ttlMs;
    this.#pendingTtlMs = pendingTtlMs;
  }

  /** A new, empty session with a fresh 256-bit id. */
  create(): PortalSession {
    this.#sweep();
    const session: PortalSession = { id: randomBytes(32).toString('base64url'), createdAt: Date.now() };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id, if any; expired logins in flight are dropped. */
  get(id: string | undefined): PortalSession | undefined {
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (Date.now() - s.createdAt > this.#ttlMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    if (s.pending && Date.now() - s.pending.createdAt > this.#pendingTtlMs) s.pending = undefined;
    return s;
  }

  destroy(id: string): void {
    this.#sessions.delete(id);
  }

  /** Ends every session of this provider session (`sid`), or of this subject when the token has no `sid`. */
  destroyWhere(match: { sid?: string; sub?: string }): number {
    let n = 0;
    for (const [id, s] of this.#sessions) {
      if (!s.user) continue;
      const hit =
        match.sid !== undefined ? s.user.sid === match.sid : match.sub !== undefined && s.user.sub === match.sub;
      if (hit) {
        this.#sessions.delete(id);
        n++;
      }
    }
    return n;
  }

  /** Signed-in sessions (for tests and operators). */
  signedIn(): PortalSession[] {
    return [...this.#sessions.values()].filter((s) => s.user);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.#sessions) if (now - s.createdAt > this.#ttlMs) this.#sessions.delete(id);
  }
}
