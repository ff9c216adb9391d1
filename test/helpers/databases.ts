// Tests on both databases: a store's contract on SQLite (a temporary file) and on PostgreSQL (a
// schema of its own, dropped afterwards), and a server scenario on a fresh PostgreSQL schema.
// PostgreSQL cases are skipped when it is not reachable, failed under STARLING_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { sql } from 'kysely';
import { openStorage, type Storage, type StorageOptions } from '../../src/storage/database.js';
import { POSTGRES_URL, postgresReachable, useService } from './services.js';

/** A schema name no other run uses: `<prefix>_<8 hex digits>`. */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** Drops a PostgreSQL schema with all in it. */
export async function dropSchema(schema: string): Promise<void> {
  const s = await openStorage(
    { driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: 'public', poolSize: 1 },
    { migrate: false },
  );
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(s.db);
  await s.close();
}

/** Opens `options` for `contract`; closes it and runs `cleanup` at teardown. */
async function withStorage(t: Test, options: StorageOptions, cleanup: () => unknown, contract: (t: Test, storage: Storage) => Promise<void>): Promise<void> {
  const storage = await openStorage(options);
  t.teardown(async () => {
    await storage.close();
    await cleanup();
  });
  await contract(t, storage);
}

/**
 * Runs a store's `contract` as two subtests: 'sqlite', on a temporary file, and 'postgres', in a
 * schema `starling_<name>_...` of its own. Each gets the storage opened (core migrations run).
 */
export function storeOnBothDatabases(t: Test, name: string, contract: (t: Test, storage: Storage) => Promise<void>): void {
  t.test('sqlite', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), `starling-${name}-`));
    const options: StorageOptions = {
      driver: 'sqlite',
      sqlitePath: path.join(dir, 'db.sqlite'),
      sqliteSynchronous: 'normal',
      postgresUrl: '',
      postgresSchema: 'public',
      poolSize: 1,
    };
    await withStorage(t, options, () => rmSync(dir, { recursive: true, force: true }), contract);
  });
  t.test('postgres', async (t) => {
    if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
    const schema = uniqueSchema(`starling_${name}`);
    const options: StorageOptions = { driver: 'postgres', sqlitePath: '', sqliteSynchronous: 'full', postgresUrl: POSTGRES_URL, postgresSchema: schema, poolSize: 4 };
    await withStorage(t, options, () => dropSchema(schema), contract);
  });
}

/**
 * Runs a server `scenario` on PostgreSQL: it gets the configuration overrides for a schema of its
 * own (`<schemaPrefix>_...`), dropped when the test is over, after the servers have stopped.
 */
export async function onPostgres(t: Test, schemaPrefix: string, scenario: (overrides: Record<string, unknown>) => Promise<void>): Promise<void> {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return;
  const schema = uniqueSchema(schemaPrefix);
  // Teardowns run last registered first: this one, registered before any server starts, runs last.
  t.teardown(() => dropSchema(schema));
  await scenario({ storage: { driver: 'postgres', postgres_url: POSTGRES_URL, postgres_schema: schema } });
}
