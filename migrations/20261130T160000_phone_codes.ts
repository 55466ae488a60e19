/**
 * Possession of the registered phone: one-time codes sent by SMS (enrollment, password reset) and reset codes an
 * officer hands over in person, all in `verification_codes` (stored as keyed hashes, bounded tries, short lives);
 * `sms_outbox` is the development SMS channel (the embedded default and tests), never used with a gateway; the
 * account remembers its last password reset so that the citizen is told at their next sign-in. Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('verification_codes')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('enroll', 'reset_sms', 'reset_officer')`))
    .addColumn('resident_id', 'uuid', (c) => c.notNull().references('residents.id').onDelete('cascade'))
    .addColumn('account_id', 'uuid', (c) => c.references('accounts.id').onDelete('cascade'))
    .addColumn('phone', 'text')
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('officer', 'text')
    .addColumn('tries_left', 'integer', (c) => c.notNull().defaultTo(5))
    .addColumn('ip', 'text')
    .addColumn('browser', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('verified_at', 'timestamptz')
    .addColumn('used_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('verification_codes_phone')
    .on('verification_codes')
    .columns(['phone', 'created_at'])
    .execute();
  await db.schema
    .createIndex('verification_codes_resident')
    .on('verification_codes')
    .columns(['resident_id', 'created_at'])
    .execute();
  await db.schema.createIndex('verification_codes_expiry').on('verification_codes').column('expires_at').execute();
  await db.schema
    .createTable('sms_outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('to_phone', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .alterTable('accounts')
    .addColumn('password_reset_at', 'timestamptz')
    .addColumn('password_reset_via', 'text')
    .addColumn('password_reset_ip', 'text')
    .addColumn('password_reset_told_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('accounts')
    .dropColumn('password_reset_at')
    .dropColumn('password_reset_via')
    .dropColumn('password_reset_ip')
    .dropColumn('password_reset_told_at')
    .execute();
  await db.schema.dropTable('sms_outbox').execute();
  await db.schema.dropTable('verification_codes').execute();
}
