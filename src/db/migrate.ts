/**
 * Migrations from `migrations/` (Kysely migrator). File names are `<UTC timestamp>_<what>.ts`; a file in that folder
 * that does not follow the pattern is an error, never silently skipped.
 */
import fs from 'node:fs/promises';
import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';

const folder = new URL('../../migrations/', import.meta.url);
const NAME = /^\d{8}T\d{6}_[a-z0-9_]+\.ts$/;

class FolderProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const file of (await fs.readdir(folder)).sort()) {
      if (!NAME.test(file)) throw new Error(`migrations/${file}: name must be <YYYYMMDDTHHMMSS>_<what>.ts`);
      out[file.replace(/\.ts$/, '')] = (await import(new URL(file, folder).href)) as Migration;
    }
    return out;
  }
}

const migrator = (db: Kysely<any>) => new Migrator({ db, provider: new FolderProvider() });

/** Applies every pending migration; returns the names applied. Throws on the first failure. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const { error, results } = await migrator(db).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of the migrations this code expects to be applied (the files in `migrations/`). */
export async function expectedMigrations(): Promise<string[]> {
  return Object.keys(await new FolderProvider().getMigrations()).sort();
}
