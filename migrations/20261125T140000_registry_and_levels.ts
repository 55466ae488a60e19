/**
 * Registry imports (personal ID reissue history, a per-run set for duplicate detection in constant memory) and level 2
 * (activation codes, TOTP secrets sealed at rest, recovery codes). Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('resident_pin_history')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('resident_id', 'uuid', (c) => c.notNull().references('residents.id'))
    .addColumn('old_pin', 'char(12)', (c) => c.notNull())
    .addColumn('new_pin', 'char(12)', (c) => c.notNull())
    .addColumn('changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('resident_pin_history_old').on('resident_pin_history').column('old_pin').execute();

  // Numbers seen by an import run; duplicates within one file are found here, not in memory. Deleted after the run.
  await sql`create unlogged table registry_import_seen (run_id uuid not null, pin char(12) not null, primary key (run_id, pin))`.execute(
    db,
  );

  await db.schema
    .createTable('activation_codes')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id'))
    .addColumn('code_sha256', 'text', (c) => c.notNull().unique())
    .addColumn('officer', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();

  await db.schema
    .alterTable('accounts')
    .addColumn('verified_in_person_at', 'timestamptz')
    .addColumn('verified_by', 'text')
    .addColumn('totp_secret_sealed', 'text')
    .addColumn('totp_pending_sealed', 'text')
    .addColumn('totp_last_step', 'bigint')
    .execute();

  await db.schema
    .createTable('recovery_codes')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id'))
    .addColumn('code_sha256', 'text', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('recovery_codes_account').on('recovery_codes').column('account_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('recovery_codes').execute();
  await db.schema
    .alterTable('accounts')
    .dropColumn('verified_in_person_at')
    .dropColumn('verified_by')
    .dropColumn('totp_secret_sealed')
    .dropColumn('totp_pending_sealed')
    .dropColumn('totp_last_step')
    .execute();
  await db.schema.dropTable('activation_codes').execute();
  await db.schema.dropTable('registry_import_seen').execute();
  await db.schema.dropTable('resident_pin_history').execute();
}
