/**
 * Text messages to a resident's registered phone (one-time codes, notices), through one interface with two real
 * implementations:
 * - `gatewaySender`: an HTTP SMS gateway in the shape most carriers and brandname-SMS providers offer: one POST per
 *   message with a JSON body built from a configurable template, an Authorization header, a deadline. A gateway that
 *   fails or does not answer in time is a 503 (Retry-After), never a hang.
 * - `outboxSender`: development, the embedded default and tests: the message goes to the `sms_outbox` table
 *   (`dinhdanh sms outbox` shows it) and a log line names the purpose and the last two digits, never the text.
 * Production refuses to start without a gateway (config).
 */
import type { Kysely } from 'kysely';
import { type DB, deleteOlderThan } from '../db/index.ts';
import { RETRY_AFTER_SECONDS } from '../db/unavailable.ts';
import { AppError } from '../errors.ts';

/** Why a message is sent (also the outbox's and the gateway template's `purpose`). */
type SmsPurpose = 'enroll' | 'reset' | 'notice';

/** One message: `to` in E.164 (+84...). */
interface SmsMessage {
  to: string;
  text: string;
  purpose: SmsPurpose;
}

/** Sends text messages. Throws AppError('unavailable') when the message could not be handed over. */
export interface SmsSender {
  readonly kind: 'gateway' | 'outbox';
  send(message: SmsMessage): Promise<void>;
}

/** A phone number as shown to the citizen: only its last two digits. */
export const maskPhone = (phone: string) => `..${phone.slice(-2)}`;

/** Settings of an HTTP SMS gateway (SMS_GATEWAY_*). */
interface GatewaySettings {
  url: string;
  /** The whole Authorization header value (`Bearer ...`, `Basic ...`), or null. Secret. */
  authorization: string | null;
  /**
   * The JSON body, where the strings `{{to}}` (+84...), `{{to_digits}}` (84...), `{{text}}`, `{{sender}}` and
   * `{{purpose}}` are replaced (in string values only, so a message can never change the body's structure).
   */
  bodyTemplate: string;
  sender: string;
  timeoutMs: number;
}

/** The default body: the common `{to, text, sender}` shape. */
// The default body template is SMS_GATEWAY_BODY's default (config).

/** Replaces the placeholders in every string of a parsed JSON template. */
function fill(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
  if (Array.isArray(value)) return value.map((v) => fill(v, vars));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, vars)]));
  return value;
}

const unavailable = (why: string, cause?: unknown) =>
  new AppError('unavailable', `SMS gateway: ${why}`, { cause, retryAfter: RETRY_AFTER_SECONDS });

/** Sends through an HTTP gateway; any 2xx answer is accepted. */
export function gatewaySender(settings: GatewaySettings): SmsSender {
  const template = JSON.parse(settings.bodyTemplate) as unknown;
  return {
    kind: 'gateway',
    async send(m) {
      const body = fill(template, {
        to: m.to,
        to_digits: m.to.replace(/^\+/, ''),
        text: m.text,
        sender: settings.sender,
        purpose: m.purpose,
      });
      let res: Response;
      try {
        res = await fetch(settings.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(settings.authorization ? { authorization: settings.authorization } : {}),
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(settings.timeoutMs),
          redirect: 'error',
        });
      } catch (err) {
        throw unavailable((err as Error).name === 'TimeoutError' ? 'no answer in time' : 'unreachable', err);
      }
      await res.body?.cancel();
      if (!res.ok) throw unavailable(`answered ${res.status}`);
    },
  };
}

/** Writes messages to `sms_outbox` (development and tests); `log` gets a line without the text. */
export function outboxSender(db: Kysely<DB>, log: (line: string) => void = () => {}): SmsSender {
  return {
    kind: 'outbox',
    async send(m) {
      await db.insertInto('sms_outbox').values({ to_phone: m.to, purpose: m.purpose, body: m.text }).execute();
      log(`SMS (${m.purpose}) to ${maskPhone(m.to)} written to the outbox: dinhdanh sms outbox`);
    },
  };
}

/** The newest outbox messages, optionally to one number. */
export async function listOutbox(db: Kysely<DB>, options: { to?: string; limit?: number } = {}) {
  let q = db
    .selectFrom('sms_outbox')
    .select(['id', 'to_phone as to', 'purpose', 'body', 'created_at as at'])
    .orderBy('id', 'desc')
    .limit(options.limit ?? 20);
  if (options.to) q = q.where('to_phone', '=', options.to);
  return q.execute();
}

/**
 * Deletes outbox messages older than a day (they hold codes, even if only development ones), `batch` rows per
 * statement (oldest first, along the primary key) until none are left.
 */
export function purgeOutbox(db: Kysely<DB>, batch = 1000): Promise<number> {
  return deleteOlderThan(db, 'sms_outbox', 'created_at', new Date(Date.now() - 86_400_000), batch);
}
