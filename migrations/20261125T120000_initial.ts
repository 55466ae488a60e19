/**
 * Initial schema: protocol storage for oidc-provider, residents (the registry), accounts, relying portals (clients)
 * and signing keys. Frozen once landed: a change is a new migration file.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // One table for every oidc-provider model; payload is the model's JSON as given to the adapter.
  await db.schema
    .createTable('oidc_payloads')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('grant_id', 'text')
    .addColumn('uid', 'text')
    .addColumn('user_code', 'text')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('consumed_at', 'timestamptz')
    .addPrimaryKeyConstraint('oidc_payloads_pk', ['model', 'id'])
    .execute();
  await db.schema
    .createIndex('oidc_payloads_uid')
    .on('oidc_payloads')
    .columns(['model', 'uid'])
    .where('uid', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_payloads_user_code')
    .on('oidc_payloads')
    .columns(['model', 'user_code'])
    .where('user_code', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_payloads_grant')
    .on('oidc_payloads')
    .column('grant_id')
    .where('grant_id', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_payloads_expiry')
    .on('oidc_payloads')
    .column('expires_at')
    .where('expires_at', 'is not', null)
    .execute();

  // Residents: the registry. `id` is internal and permanent; `pin` (the 12-digit personal identification number)
  // can be cancelled and reissued, so nothing references it.
  await db.schema
    .createTable('residents')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('pin', 'char(12)', (c) => c.notNull().unique().check(sql`pin ~ '^[0-9]{12}$'`))
    .addColumn('full_name', 'text', (c) => c.notNull())
    .addColumn('family_name', 'text', (c) => c.notNull())
    .addColumn('middle_name', 'text')
    .addColumn('given_name', 'text', (c) => c.notNull())
    .addColumn('birth_date', 'date', (c) => c.notNull())
    .addColumn('sex', 'text', (c) => c.notNull().check(sql`sex in ('male', 'female')`))
    .addColumn('nationality', 'text', (c) => c.notNull().defaultTo('VN'))
    .addColumn('place_of_origin', 'text')
    .addColumn('permanent_residence', 'jsonb')
    .addColumn('current_residence', 'jsonb')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // E-ID accounts. One per resident; level 1 (self-enrolled) or 2 (verified in person).
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('resident_id', 'uuid', (c) => c.notNull().unique().references('residents.id'))
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('level', 'smallint', (c) => c.notNull().defaultTo(1).check(sql`level in (1, 2)`))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('email', 'text')
    .addColumn('phone_number', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // Relying portals. `metadata` is OIDC client metadata; the secret is only ever stored as its SHA-256.
  await db.schema
    .createTable('clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('metadata', 'jsonb', (c) => c.notNull())
    .addColumn('secret_sha256', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // Signing keys: public JWK in clear, private JWK sealed with AES-256-GCM under the master key.
  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('private_jwk_sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('activated_at', 'timestamptz')
    .addColumn('retired_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['signing_keys', 'clients', 'accounts', 'residents', 'oidc_payloads'])
    await db.schema.dropTable(t).execute();
}
