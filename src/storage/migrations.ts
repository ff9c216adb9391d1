// Numbered migrations, per component ('core' here; a module declares its own in defineModule,
// and they run once at boot).
// Each runs in a transaction and is recorded; a database that has run a migration this code
// does not know is newer than the code, and the start stops with a clear message.
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export type Driver = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, driver: Driver): Promise<void>;
}

export class SchemaTooNewError extends Error {
  constructor(component: string, dbVersion: number, codeVersion: number) {
    super(
      `the database schema of "${component}" is at version ${dbVersion}, but this Starling knows only up to ` +
        `${codeVersion}: it was written by a newer Starling. Run that version, or restore a backup.`,
    );
    this.name = 'SchemaTooNewError';
  }
}

async function ensureMigrationTable(db: Kysely<Database>): Promise<void> {
  await db.schema
    .createTable('schema_migration')
    .ifNotExists()
    .addColumn('component', 'varchar(64)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('schema_migration_pk', ['component', 'version'])
    .execute();
}

/**
 * Runs the migrations of one component not yet applied; returns the names it applied. On
 * PostgreSQL, the nodes of a cluster starting together share the schema: one migrates at a time
 * (an advisory lock for the schema, held on one connection), the others then find it done.
 */
export async function migrate(db: Kysely<Database>, driver: Driver, component: string, migrations: readonly Migration[]): Promise<string[]> {
  if (driver !== 'postgres') return migrateNow(db, driver, component, migrations);
  return db.connection().execute(async (conn) => {
    const lock = sql`hashtext(current_schema() || ' starling migrations')`;
    await sql`select pg_advisory_lock(${lock})`.execute(conn);
    try {
      return await migrateNow(conn, driver, component, migrations);
    } finally {
      await sql`select pg_advisory_unlock(${lock})`.execute(conn);
    }
  });
}

async function migrateNow(db: Kysely<Database>, driver: Driver, component: string, migrations: readonly Migration[]): Promise<string[]> {
  await ensureMigrationTable(db);
  const codeVersion = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const done = await db.selectFrom('schema_migration').select('version').where('component', '=', component).execute();
  const doneVersions = new Set(done.map((r) => Number(r.version)));
  const dbVersion = Math.max(0, ...doneVersions);
  if (dbVersion > codeVersion) throw new SchemaTooNewError(component, dbVersion, codeVersion);

  const applied: string[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (doneVersions.has(m.version)) continue;
    await db.transaction().execute(async (trx) => {
      await m.up(trx, driver);
      await trx.insertInto('schema_migration').values({ component, version: m.version, name: m.name, applied_at: Date.now() }).execute();
    });
    applied.push(`${component}/${String(m.version).padStart(3, '0')}_${m.name}`);
  }
  return applied;
}

/** A blob-free, dialect-neutral timestamp column type. */
export const millis = 'bigint' as const;

/**
 * CREATE TABLE for rows an account owns: host and username columns, and the foreign key that
 * deletes the rows with the account (so `starling deluser` leaves nothing behind). Add the
 * table's own columns and keys to the returned builder.
 */
export function createUserTable(db: Kysely<any>, name: string) {
  return db.schema
    .createTable(name)
    .addColumn('host', 'varchar(1023)', (c) => c.notNull())
    .addColumn('username', 'varchar(1023)', (c) => c.notNull())
    .addForeignKeyConstraint(`${name}_account_fk`, ['host', 'username'], 'account', ['host', 'username'], (fk) => fk.onDelete('cascade'));
}

/** Whether the current schema has a table of that name. */
export async function tableExists(db: Kysely<any>, driver: Driver, name: string): Promise<boolean> {
  const query =
    driver === 'postgres'
      ? sql`select 1 from information_schema.tables where table_schema = current_schema() and table_name = ${name}`
      : sql`select 1 from sqlite_master where type = 'table' and name = ${name}`;
  return (await query.execute(db)).rows.length > 0;
}

/**
 * The migrations of a module whose data moved from tables of its own (`tables`, created by its
 * version 1) into the store kinds' tables: version 1 creates nothing any more, version 2 copies
 * the rows of a database that has the old tables (`copy`), then drops them.
 */
export function movedToStores(tables: readonly string[], copy: (db: Kysely<any>, driver: Driver) => Promise<void>): Migration[] {
  return [
    { version: 1, name: tables[0]!, up: async () => {} },
    {
      version: 2,
      name: 'to_store_kinds',
      async up(db, driver) {
        if (!(await tableExists(db, driver, tables[0]!))) return;
        await copy(db, driver);
        for (const table of tables) await db.schema.dropTable(table).execute();
      },
    },
  ];
}
