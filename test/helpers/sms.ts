/** The development SMS outbox, as a test reads it (the service writes it when SMS_GATEWAY_URL is unset). */
import type { Kysely } from 'kysely';
import type { DB } from '../../src/db/index.ts';
import { listOutbox } from '../../src/sms/index.ts';

/** The newest message to `phone`, with the 6-digit code it carries (if any). Throws when there is none. */
export async function lastSms(
  db: Kysely<DB>,
  phone: string,
): Promise<{ purpose: string; body: string; code?: string }> {
  const [m] = await listOutbox(db, { to: phone, limit: 1 });
  if (!m) throw new Error(`no SMS to ${phone}`);
  return { purpose: m.purpose, body: m.body, code: /\b(\d{6})\b/.exec(m.body)?.[1] };
}
