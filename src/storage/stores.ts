// Store kinds, in the spirit of Prosody's module:open_store: a module keeps its data in generic
// tables under a store name of its own, reached as ctx.store.keyval<T>(name), map<T>(name) and
// archive(name). Every kind works the same on SQLite and PostgreSQL, and an account's rows go
// with the account (the foreign keys cascade).
//
//   keyval  one value per account: a row of user_data (host, username, store, key '', value);
//   map     keyed values per account: rows of user_data (host, username, store, key, value);
//   archive time-ordered items per account or per service address (archive/store.ts).
//
// Values are JSON by default; `text` keeps a string (XML, say) as it is.
import type { Kysely } from 'kysely';
import type { Storage } from './database.js';
import type { Database } from './schema.js';
import { ArchiveStore, type ArchiveOwner } from './archive/store.js';
import { purgeHourly, type Scheduler } from './archive/retention.js';

export interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

export const json: Codec<any> = { encode: (v) => JSON.stringify(v), decode: (s) => JSON.parse(s) };
export const text: Codec<string> = { encode: (s) => s, decode: (s) => s };

const KEY_UPSERT = ['host', 'username', 'store', 'key'] as const;

/** Keyed values per account, under one store name. */
export class MapStore<T> {
  constructor(
    private readonly storage: Storage,
    readonly store: string,
    private readonly codec: Codec<T> = json,
  ) {}

  private rows(db: Kysely<Database>, host: string, username: string) {
    return db.selectFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', '=', this.store);
  }

  async get(host: string, username: string, key: string): Promise<T | undefined> {
    const row = await this.rows(this.storage.db, host, username).select('value').where('key', '=', key).executeTakeFirst();
    return row && this.codec.decode(row.value);
  }

  async set(host: string, username: string, key: string, value: T): Promise<void> {
    await this.upsert(this.storage.db, host, username, [[key, this.codec.encode(value)]]);
  }

  /** Deletes one key; false when it was not there. */
  async delete(host: string, username: string, key: string): Promise<boolean> {
    const result = await this.storage.db
      .deleteFrom('user_data')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', this.store)
      .where('key', '=', key)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Every key of the account, in key order. */
  async all(host: string, username: string): Promise<Map<string, T>> {
    return this.read(this.storage.db, host, username);
  }

  async deleteAll(host: string, username: string): Promise<number> {
    const result = await this.storage.db.deleteFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', '=', this.store).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Reads the account's entries, lets `change` edit them (add, replace, delete keys in the map it
   * gets) and writes what it changed, in one transaction; resolves with what `change` returned.
   * Writers of one account are serialized (a row lock on the account on PostgreSQL; SQLite runs
   * one write transaction at a time), so a check such as a size limit holds.
   */
  async update<R>(host: string, username: string, change: (entries: Map<string, T>) => R): Promise<R> {
    return this.storage.db.transaction().execute(async (trx) => {
      if (this.storage.driver === 'postgres') {
        await trx.selectFrom('account').select('host').where('host', '=', host).where('username', '=', username).forUpdate().execute();
      }
      const before = await this.rows(trx, host, username).select(['key', 'value']).execute();
      const old = new Map(before.map((r) => [r.key, r.value]));
      const entries = new Map([...old].map(([k, v]) => [k, this.codec.decode(v)]));
      const result = change(entries);
      const gone = [...old.keys()].filter((k) => !entries.has(k));
      if (gone.length > 0)
        await trx.deleteFrom('user_data').where('host', '=', host).where('username', '=', username).where('store', '=', this.store).where('key', 'in', gone).execute();
      const changed = [...entries].map(([k, v]): [string, string] => [k, this.codec.encode(v)]).filter(([k, v]) => old.get(k) !== v);
      await this.upsert(trx, host, username, changed);
      return result;
    });
  }

  private async read(db: Kysely<Database>, host: string, username: string): Promise<Map<string, T>> {
    const rows = await this.rows(db, host, username).select(['key', 'value']).orderBy('key').execute();
    return new Map(rows.map((r) => [r.key, this.codec.decode(r.value)]));
  }

  private async upsert(db: Kysely<Database>, host: string, username: string, entries: [string, string][]): Promise<void> {
    if (entries.length === 0) return;
    await db
      .insertInto('user_data')
      .values(entries.map(([key, value]) => ({ host, username, store: this.store, key, value, expires_at: null })))
      .onConflict((oc) => oc.columns(KEY_UPSERT).doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
      .execute();
  }
}

/** One value per account, under one store name. */
export class KeyvalStore<T> {
  private readonly map: MapStore<T>;

  constructor(storage: Storage, store: string, codec: Codec<T> = json) {
    this.map = new MapStore(storage, store, codec);
  }

  get(host: string, username: string): Promise<T | undefined> {
    return this.map.get(host, username, '');
  }

  set(host: string, username: string, value: T): Promise<void> {
    return this.map.set(host, username, '', value);
  }

  delete(host: string, username: string): Promise<boolean> {
    return this.map.delete(host, username, '');
  }
}

export interface ArchiveOptions {
  /** Who owns the archives: accounts (the default), or addresses of a service (rooms, nodes). */
  owner?: ArchiveOwner;
  /** Items older than `days` are purged hourly, oldest first, from the archives under `host`; 0 keeps them. */
  retention?: { days: number; host: string };
}

/** A module's entry to the store kinds (ctx.store). */
export class Stores {
  constructor(
    private readonly storage: Storage,
    private readonly scheduler: Scheduler,
  ) {}

  keyval<T>(name: string, codec?: Codec<T>): KeyvalStore<T> {
    return new KeyvalStore(this.storage, name, codec);
  }

  map<T>(name: string, codec?: Codec<T>): MapStore<T> {
    return new MapStore(this.storage, name, codec);
  }

  /** An archive store; the writes queued when the module unloads commit first. */
  archive(name: string, options: ArchiveOptions = {}): ArchiveStore {
    const archive = new ArchiveStore(this.storage, name, options.owner);
    this.scheduler.onUnload(() => archive.idle());
    const { days = 0, host = '' } = options.retention ?? {};
    if (days > 0) purgeHourly(this.scheduler, name, { retention_days: days, host }, () => archive.purgeBefore(host, Date.now() - days * 86_400_000));
    return archive;
  }
}
