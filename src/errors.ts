/**
 * The one domain error. Services throw it with a code from a closed set; the HTTP layer maps codes to statuses and
 * renders one message per code (HTML for people, JSON for APIs); the CLI prints the message. `cause` is logged,
 * never shown.
 */
export type ErrorCode =
  | 'invalid_input' // the caller sent something malformed (message says what)
  | 'not_found'
  | 'method_not_allowed' // the resource exists; the method is not one of its (Allow lists them)
  | 'conflict'
  | 'credentials_rejected' // one answer for unknown id, wrong password, locked or disabled account
  | 'csrf'
  | 'forbidden' // authenticated, but without the right for this
  | 'payload_too_large'
  | 'rate_limited' // too many attempts; `retryAfter` says for how long
  | 'unavailable';

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  credentials_rejected: 401,
  csrf: 403,
  forbidden: 403,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  /** Whether `message` may be shown to the caller. */
  readonly expose: boolean;
  /** Seconds before trying again (rate_limited, unavailable). */
  readonly retryAfter: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options: { expose?: boolean; cause?: unknown; retryAfter?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.expose = options.expose ?? code !== 'unavailable';
    this.retryAfter = options.retryAfter;
  }
  get status(): number {
    return STATUS[this.code];
  }
  /** The same status under the name oidc-provider and Koa read (http-errors' convention). */
  get statusCode(): number {
    return STATUS[this.code];
  }
}
