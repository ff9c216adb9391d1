// Roster storage: items (with their version for XEP-0237), pending inbound subscription
// requests, and each user's roster version. Every table cascades from the account.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import { createUserTable, type Migration } from '../../src/storage/migrations.js';
import type { RosterItem, Subscription } from './service.js';

interface RosterItemTable {
  host: string;
  username: string;
  contact: string;
  name: string | null;
  subscription: Subscription;
  ask: number;
  approved: number;
  groups: string; // JSON array
  /** Roster version of the last change; removed items stay as tombstones for versioned gets. */
  version: number;
  removed: number;
}

interface RosterRequestTable {
  host: string;
  username: string;
  contact: string;
  /** The subscribe stanza as received, re-sent at each login until answered. */
  stanza: string;
  created_at: number;
}

interface RosterVersionTable {
  host: string;
  username: string;
  version: number;
}

export interface RosterTables {
  roster_item: RosterItemTable;
  roster_request: RosterRequestTable;
  roster_version: RosterVersionTable;
}

export const rosterMigrations: Migration[] = [
  {
    version: 1,
    name: 'roster',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'roster_item')
        .addColumn('contact', 'varchar(3071)', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('subscription', 'varchar(8)', (c) => c.notNull())
        .addColumn('ask', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('removed', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('roster_item_pk', ['host', 'username', 'contact'])
        .execute();
      await createUserTable(db, 'roster_request')
        .addColumn('contact', 'varchar(3071)', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_request_pk', ['host', 'username', 'contact'])
        .execute();
      await createUserTable(db, 'roster_version')
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_version_pk', ['host', 'username'])
        .execute();
    },
  },
];

export interface StoredItem extends RosterItem {
  version: number;
  removed: boolean;
}

function toItem(row: RosterItemTable): StoredItem {
  return {
    jid: row.contact,
    name: row.name ?? undefined,
    subscription: row.subscription,
    ask: row.ask === 1,
    approved: row.approved === 1,
    groups: JSON.parse(row.groups) as string[],
    version: Number(row.version),
    removed: row.removed === 1,
  };
}

export class RosterStore {
  private readonly db: Kysely<RosterTables>;

  /**
   * `transaction`: this store works inside it (see locked()), and `afterCommit` collects what
   * to do once it is committed.
   */
  constructor(
    private readonly storage: Storage,
    transaction?: Kysely<RosterTables>,
    private readonly afterCommitted?: (() => void)[],
  ) {
    this.db = transaction ?? (storage.tables<RosterTables>() as unknown as Kysely<RosterTables>);
  }

  /**
   * Runs a read-modify-write of one account's roster (items, requests, version) in a
   * transaction that holds that account's roster lock, so concurrent subscription stanzas and
   * roster sets of the same account (on any node) apply one after the other instead of
   * overwriting each other. The lock is the account's roster_version row: SELECT ... FOR UPDATE
   * on PostgreSQL; SQLite runs one write transaction at a time. `fn` must use only `tx`.
   * The callbacks given to tx.afterCommit (roster pushes) run once the transaction committed.
   */
  async locked<T>(host: string, username: string, fn: (tx: RosterStore) => Promise<T>): Promise<T> {
    if (this.afterCommitted) return fn(this); // already inside
    const after: (() => void)[] = [];
    const result = await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('roster_version')
        .values({ host, username, version: 0 })
        .onConflict((oc) => oc.columns(['host', 'username']).doNothing())
        .execute();
      if (this.storage.driver === 'postgres') {
        await trx.selectFrom('roster_version').select('version').where('host', '=', host).where('username', '=', username).forUpdate().execute();
      }
      return fn(new RosterStore(this.storage, trx, after));
    });
    for (const f of after) f();
    return result;
  }

  /** Runs `fn` once the current locked() transaction is committed (at once outside one). */
  afterCommit(fn: () => void): void {
    if (this.afterCommitted) this.afterCommitted.push(fn);
    else fn();
  }

  async version(host: string, username: string): Promise<number> {
    const row = await this.db.selectFrom('roster_version').select('version').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return row ? Number(row.version) : 0;
  }

  /** Live items (no tombstones). */
  async items(host: string, username: string): Promise<StoredItem[]> {
    const rows = await this.db
      .selectFrom('roster_item')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .where('removed', '=', 0)
      .orderBy('contact')
      .execute();
    return rows.map(toItem);
  }

  /** Items (and tombstones) changed after `version`. */
  async changedSince(host: string, username: string, version: number): Promise<StoredItem[]> {
    const rows = await this.db
      .selectFrom('roster_item')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .where('version', '>', version)
      .orderBy('version')
      .execute();
    return rows.map(toItem);
  }

  async item(host: string, username: string, contact: string): Promise<StoredItem | undefined> {
    const row = await this.db
      .selectFrom('roster_item')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .where('contact', '=', contact)
      .where('removed', '=', 0)
      .executeTakeFirst();
    return row ? toItem(row) : undefined;
  }

  async count(host: string, username: string): Promise<number> {
    const row = await this.db
      .selectFrom('roster_item')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .where('removed', '=', 0)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Writes an item (or its tombstone when `item` is undefined) under a new roster version. */
  async put(host: string, username: string, contact: string, item: RosterItem | undefined): Promise<number> {
    const inTransaction = <T>(fn: (trx: Kysely<RosterTables>) => Promise<T>) => (this.afterCommitted ? fn(this.db) : this.db.transaction().execute(fn));
    return inTransaction(async (trx) => {
      const current = await trx.selectFrom('roster_version').select('version').where('host', '=', host).where('username', '=', username).executeTakeFirst();
      const version = (current ? Number(current.version) : 0) + 1;
      if (current) await trx.updateTable('roster_version').set({ version }).where('host', '=', host).where('username', '=', username).execute();
      else await trx.insertInto('roster_version').values({ host, username, version }).execute();
      const row: RosterItemTable = {
        host,
        username,
        contact,
        name: item?.name ?? null,
        subscription: item?.subscription ?? 'none',
        ask: item?.ask ? 1 : 0,
        approved: item?.approved ? 1 : 0,
        groups: JSON.stringify(item?.groups ?? []),
        version,
        removed: item ? 0 : 1,
      };
      await trx
        .insertInto('roster_item')
        .values(row)
        .onConflict((oc) => oc.columns(['host', 'username', 'contact']).doUpdateSet({ ...row }))
        .execute();
      return version;
    });
  }

  async request(host: string, username: string, contact: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('roster_request')
      .select('stanza')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('contact', '=', contact)
      .executeTakeFirst();
    return row?.stanza;
  }

  async requests(host: string, username: string): Promise<{ contact: string; stanza: string }[]> {
    return this.db.selectFrom('roster_request').select(['contact', 'stanza']).where('host', '=', host).where('username', '=', username).orderBy('created_at').execute();
  }

  async setRequest(host: string, username: string, contact: string, stanza: string | undefined): Promise<void> {
    if (stanza === undefined) {
      await this.db.deleteFrom('roster_request').where('host', '=', host).where('username', '=', username).where('contact', '=', contact).execute();
      return;
    }
    await this.db
      .insertInto('roster_request')
      .values({ host, username, contact, stanza, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['host', 'username', 'contact']).doUpdateSet({ stanza }))
      .execute();
  }
}
