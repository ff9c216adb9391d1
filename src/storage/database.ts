// Opens the configured database (SQLite embedded by default, PostgreSQL for production) behind
// one Kysely instance and brings its schema up to date.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { Logger } from '../log.js';
import type { Database } from './schema.js';
import { migrate, type Driver, type Migration } from './migrations.js';
import { coreMigrations } from './core-migrations.js';
import { SqliteWriter } from './sqlite-writer.js';

export interface StorageOptions {
  driver: Driver;
  /** SQLite file; ':memory:' for a throwaway database. */
  sqlitePath: string;
  sqliteSynchronous: 'full' | 'normal';
  postgresUrl: string;
  postgresSchema: string;
  poolSize: number;
  /**
   * Where a lost database connection is told (PostgreSQL): once when it is lost, once when it
   * is back. Without it, nothing is logged (the failing queries still reject).
   */
  log?: Logger;
}

export interface Storage {
  readonly db: Kysely<Database>;
  readonly driver: StorageOptions['driver'];
  /** Human-readable location, for logs (never the password). */
  readonly location: string;
  /**
   * The same database, typed with a module's own tables as well (a module's store.ts declares
   * them and creates them with its migrations).
   */
  tables<T>(): Kysely<Database & T>;
  /** Runs a component's migrations (a module's, at boot: ModuleDefinition.migrations). */
  migrate(component: string, migrations: readonly Migration[]): Promise<string[]>;
  /**
   * SQLite in a file: inserts run in a worker thread (the archive's group commit), so the event
   * loop does not wait on the disk. Absent on PostgreSQL (its I/O is asynchronous) and in memory.
   */
  readonly sqliteWriter?: SqliteWriter;
  /** Cheap round trip, for `starling check` and health. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the database; with `migrate` (the default) brings the core schema up to date. */
export async function openStorage(options: StorageOptions, { migrate: runMigrations = true } = {}): Promise<Storage> {
  const { db, location } = options.driver === 'sqlite' ? await openSqlite(options) : await openPostgres(options);
  const sqliteWriter =
    options.driver === 'sqlite' && options.sqlitePath !== ':memory:'
      ? new SqliteWriter(path.resolve(options.sqlitePath), options.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL')
      : undefined;
  const storage: Storage = {
    db,
    driver: options.driver,
    location,
    sqliteWriter,
    tables: <T>() => db as unknown as Kysely<Database & T>,
    migrate: (component, migrations) => migrate(db, options.driver, component, migrations),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: async () => {
      await sqliteWriter?.close();
      await db.destroy();
    },
  };
  try {
    if (runMigrations) await storage.migrate('core', coreMigrations);
    else await storage.ping();
  } catch (err) {
    await storage.close();
    throw err;
  }
  return storage;
}

/** WAL pages past which a commit on the main connection checkpoints (SQLite's default: 1,000); above the writer's WAL_RESET_FRAMES. */
const MAIN_WAL_AUTOCHECKPOINT_PAGES = 40_000;

async function openSqlite(options: StorageOptions) {
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  if (options.sqlitePath !== ':memory:') mkdirSync(path.dirname(path.resolve(options.sqlitePath)), { recursive: true });
  const sqlite = new BetterSqlite3(options.sqlitePath);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // The archive writer thread checkpoints the WAL itself, off the commit path (sqlite-writer.ts):
  // this connection only does so past a larger log, so its commits (on the event loop) seldom do.
  sqlite.pragma(`wal_autocheckpoint = ${MAIN_WAL_AUTOCHECKPOINT_PAGES}`);
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), location: `sqlite:${options.sqlitePath}` };
}

async function openPostgres(options: StorageOptions) {
  const pg = (await import('pg')).default;
  // int8 (bigint) columns hold millisecond times: read them as numbers, not strings.
  pg.types.setTypeParser(20, (v: string) => Number(v));
  const pool = new pg.Pool({
    connectionString: options.postgresUrl,
    max: options.poolSize,
    options: options.postgresSchema === 'public' ? undefined : `-c search_path=${options.postgresSchema}`,
    // A database that does not answer (a host down, a firewall dropping packets) fails a query
    // in seconds instead of holding it, and the stanza waiting on it, forever: a connection
    // attempt gets CONNECT_TIMEOUT_MS. A query waiting its turn for a connection of a busy pool
    // (a mass logout: thousands of writes at once) waits longer: pg-pool's own timeout also
    // bounds that wait.
    connectionTimeoutMillis: POOL_WAIT_MS,
    Client: class extends pg.Client {
      constructor(config?: import('pg').ClientConfig) {
        super({ ...config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
      }
    },
    keepAlive: true,
  });
  watchPool(pool, options.log);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (options.postgresSchema !== 'public') await createSchema(db, options.postgresSchema);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, location: `postgres:${redactUrl(options.postgresUrl)} schema ${options.postgresSchema}` };
}

/**
 * CREATE SCHEMA IF NOT EXISTS, which is not safe against itself: nodes of a cluster starting
 * together may both create it, and the slower gets a unique violation; the schema is there then.
 */
async function createSchema(db: Kysely<Database>, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}

/** How long a new PostgreSQL connection may take before the query waiting on it fails. */
const CONNECT_TIMEOUT_MS = 5000;
/** How long a query may wait for a connection of the pool (its turn, or a new connection). */
const POOL_WAIT_MS = 30_000;

/**
 * A lost PostgreSQL connection (the server stopped or restarted, the network cut) makes pg emit
 * 'error' on the pool (an idle client) or on the client itself (one a transaction holds between
 * two queries). Unheard, either takes the process down; heard, the broken client leaves the
 * pool (pg-pool drops a client that is no longer queryable), the queries on it reject, and the
 * next query opens a new connection: the pool reconnects by itself once the database is back.
 * The loss is logged once, and the return once.
 */
function watchPool(pool: import('pg').Pool, log: Logger | undefined): void {
  let lost = false;
  const onError = (err: Error) => {
    if (lost) return;
    lost = true;
    log?.error({ err: err.message }, 'lost the connection to PostgreSQL; queries fail until it is back, then the pool reconnects');
  };
  pool.on('error', onError);
  pool.on('connect', (client) => {
    client.on('error', onError);
    if (!lost) return;
    lost = false;
    log?.info('PostgreSQL connection is back');
  });
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}
