// The archive store kind: time-ordered items (messages) per owner, keyset-paged, with retention
// and group commit. The user message archives (modules/mam), the room archives
// (modules/muc-mam) and the offline queues (modules/offline) are archives of this engine, each
// under its store name.
//
// Two tables, with the same columns but the owner's names:
//   archive          (host, username, store, ...): owned by an account, rows go with it (the
//                    foreign key cascades, createUserTable);
//   service_archive  (service, node, store, ...): owned by an address of a service (a MUC
//                    room, a pubsub node), rows go when the service removes them.
// The item columns: id (the XEP-0313 UID, the stanza-id a user sees), ts (the time encoded in
// the id, ids.ts), with_bare and with_resource (the other party), direction ('in' or 'out'),
// stanza (the item as serialized XML).
//
// Order and lookups. The archive order is (ts, id): `ts` is the time encoded in the id, so both
// orders agree and an id alone gives its row's full key. Hence:
//   - primary key (owner, store, ts, id): the whole archive in order, time ranges, and the
//     lookup of an id (its ts is decoded from it): no separate index on id;
//   - index (owner, store, with_bare, ts, id): one conversation in order ('with' queries);
//     service archives also (owner, store, with_resource, ts, id): a room occupant's messages.
// Every page is keyset pagination on (ts, id) over one of these indexes, forwards or backwards,
// never OFFSET: the cost of a page does not depend on where it sits in the archive. Lower
// bounds (start, after-id, RSM after) are folded into the tightest single one, and so are upper
// bounds, so each query is one index range.
//
// Counting (XEP-0059 <count/> and <first index=''/>). An exact count of a range is a scan of
// that range: fine for a conversation of a few thousand messages, not for a 1,000,000-message
// archive on every page. So counts are bounded: the range is counted up to `countLimit` rows
// (select count(*) from (... limit countLimit + 1)); when it holds more, count and index are
// omitted, which XEP-0059 §2.1 allows "only if it would be either impossible or exceptionally
// resource intensive to calculate reasonably accurate values" and XEP-0313 §4.3.2 tells clients
// not to depend on. A result set found too big is remembered for a while (UNCOUNTABLE_TTL_MS):
// archives only grow at their end, so paging through it (the same filter, other RSM bounds)
// does not count again and again; were it to shrink (retention), leaving the count out a little
// longer is still allowed. `complete` never needs a count: the page query fetches max + 1 rows.
//
// Writes (append, update, removeArchive) go through the database's write queue
// (write-queue.ts): group commit, in the order they were made, each resolving once committed.
// `idle()` waits for those queued so far (a query that must see them).
//
// On PostgreSQL the id column uses the "C" collation, so the database orders ids as bytes, as
// JavaScript compares them here (SQLite's default BINARY collation does the same).
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Storage } from '../database.js';
import type { Database } from '../schema.js';
import { createUserTable, millis } from '../migrations.js';
import { IdGenerator, idTime } from './ids.js';
import { WriteQueue } from './write-queue.js';
import { unnestInserter, valuesInserter } from './row-inserter.js';

export type Direction = 'in' | 'out';

export interface ArchiveItemTable {
  host: string;
  username: string;
  store: string;
  id: string;
  ts: number;
  with_bare: string;
  with_resource: string;
  direction: Direction;
  stanza: string;
}

export interface ArchiveTables {
  archive: ArchiveItemTable;
}

/** Who owns the archives of a store: accounts, or addresses of a service (rooms, nodes). */
export type ArchiveOwner = 'account' | 'service';

/** The table of each kind of owner, and its two owner columns (domain, local part). */
const TABLES: Record<ArchiveOwner, { table: string; owner: readonly [string, string] }> = {
  account: { table: 'archive', owner: ['host', 'username'] },
  service: { table: 'service_archive', owner: ['service', 'node'] },
};

/** Creates the archive tables (a core migration). */
export async function createArchiveTables(db: Kysely<any>, driver: Storage['driver']): Promise<void> {
  for (const owner of ['account', 'service'] as const) {
    const {
      table,
      owner: [a, b],
    } = TABLES[owner];
    const owned =
      owner === 'account'
        ? createUserTable(db, table)
        : db.schema
            .createTable(table)
            .addColumn(a, 'varchar(1023)', (c) => c.notNull())
            .addColumn(b, 'varchar(1023)', (c) => c.notNull());
    await owned
      .addColumn('store', 'varchar(64)', (c) => c.notNull())
      .addColumn('ts', millis, (c) => c.notNull())
      .addColumn('id', 'varchar(32)', (c) => (driver === 'postgres' ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull()))
      .addColumn('with_bare', 'varchar(2047)', (c) => c.notNull())
      .addColumn('with_resource', 'varchar(1023)', (c) => c.notNull().defaultTo(''))
      .addColumn('direction', 'varchar(3)', (c) => c.notNull())
      .addColumn('stanza', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint(`${table}_pk`, [a, b, 'store', 'ts', 'id'] as never)
      .execute();
    const index = (name: string, column: string) => db.schema.createIndex(`${table}_${name}_idx`).on(table).columns([a, b, 'store', column, 'ts', 'id']).execute();
    await index('with', 'with_bare');
    if (owner === 'service') await index('nick', 'with_resource');
  }
}

export interface ArchivedMessage {
  id: string;
  ts: number;
  withBare: string;
  withResource: string;
  direction: Direction;
  stanza: string;
}

/** The position of a message in its archive. */
export interface ArchiveKey {
  ts: number;
  id: string;
}

/** What defines a result set (XEP-0313 §4.1 form fields); all optional. */
export interface ArchiveFilter {
  /**
   * 'with': a bare JID matches every resource; with a resource, only that one. A room archive
   * may filter on the resource (the occupant's nick) alone.
   */
  with?: { bare?: string; resource?: string };
  /** 'start' and 'end': inclusive, ms since the epoch. */
  start?: number;
  end?: number;
  /** 'after-id' and 'before-id': exclusive bounds (must exist in the archive). */
  afterId?: string;
  beforeId?: string;
  /** 'ids': only these (each must exist in the archive). */
  ids?: string[];
}

/** A page of a result set (XEP-0059). */
export interface PageRequest extends ArchiveFilter {
  /** RSM <after/>: the page starts after this id. */
  after?: string;
  /** RSM <before/>: the page ends before this id, paging backwards; '' = the last page. */
  before?: string;
  /** Most items in the page (0: only the count). */
  max: number;
  /** Largest result set that is counted exactly; beyond it, count and index are omitted. */
  countLimit: number;
}

export interface Page {
  /** In archive (chronological) order. */
  items: ArchivedMessage[];
  /** No more items in the paging direction (XEP-0313 §4.3.2 'complete'). */
  complete: boolean;
  /** Items in the full result set, when at most countLimit. */
  count?: number;
  /** Position of the first item in the full result set, when count is known. */
  index?: number;
}

/** An item to append; without an id, the archive issues one (now). */
export type NewItem = Omit<ArchivedMessage, 'ts' | 'id'> & { id?: string };

/** An id named by a query (after/before, after-id/before-id, ids) that the archive does not hold. */
export class ArchiveItemNotFound extends Error {
  constructor(readonly id: string) {
    super(`no message with the id ${JSON.stringify(id)} in this archive`);
    this.name = 'ArchiveItemNotFound';
  }
}

/** A bound on (ts, id): with an id, exclusive on the key; without, inclusive on ts alone. */
interface Bound {
  ts: number;
  id?: string;
}

/** The tighter of two lower bounds (the larger; ts-inclusive sorts before every id at ts). */
function tighterLower(a: Bound | undefined, b: Bound | undefined): Bound | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.ts !== b.ts) return a.ts > b.ts ? a : b;
  return (a.id ?? '') >= (b.id ?? '') ? a : b;
}

/** The tighter of two upper bounds (the smaller; ts-inclusive sorts after every id at ts). */
function tighterUpper(a: Bound | undefined, b: Bound | undefined): Bound | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.ts !== b.ts) return a.ts < b.ts ? a : b;
  if (a.id === undefined) return b;
  if (b.id === undefined) return a;
  return a.id <= b.id ? a : b;
}

type Eb = ExpressionBuilder<Database & ArchiveTables, 'archive'>;

/** How long a result set found bigger than the count limit is not counted again. */
const UNCOUNTABLE_TTL_MS = 10 * 60_000;
const UNCOUNTABLE_ENTRIES = 10_000;

interface Range {
  host: string;
  username: string;
  with?: ArchiveFilter['with'];
  keys?: ArchiveKey[];
  lower?: Bound;
  upper?: Bound;
}

/** What one database's archives share: the write queue and the id generator. */
interface Shared {
  queue: WriteQueue;
  ids: IdGenerator;
}
const shared = new WeakMap<Storage, Shared>();

/** The archives of one store name (say 'mam'), each owner's archive addressed by (host, username). */
export class ArchiveStore {
  private readonly db: Kysely<Database & ArchiveTables>;
  private readonly queue: WriteQueue;
  private readonly ids: IdGenerator;
  /** Result sets (archive and filter) known to hold more than their count limit -> when found. */
  private readonly uncountable = new Map<string, number>();

  /**
   * The table and owner columns, typed as the account archives': both tables have the same
   * columns but these two names (createArchiveTables), so the queries below are the same SQL.
   */
  private readonly t: 'archive';
  private readonly hostCol: 'host';
  private readonly userCol: 'username';

  constructor(
    private readonly storage: Storage,
    readonly store: string,
    readonly owner: ArchiveOwner = 'account',
  ) {
    this.db = storage.tables<ArchiveTables>();
    let s = shared.get(storage);
    if (!s)
      shared.set(
        storage,
        (s = { queue: new WriteQueue(storage.db, storage.sqliteWriter, storage.driver === 'postgres' ? unnestInserter : valuesInserter), ids: new IdGenerator() }),
      );
    this.queue = s.queue;
    this.ids = s.ids;
    const names = TABLES[owner];
    this.t = names.table as 'archive';
    this.hostCol = names.owner[0] as 'host';
    this.userCol = names.owner[1] as 'username';
  }

  /** A new id, greater than every id issued before for this database by this process. */
  newId(): string {
    return this.ids.next();
  }

  /** The rows of one archive. */
  private rows(db: Kysely<Database & ArchiveTables>, host: string, username: string) {
    return db.selectFrom(this.t).where(this.hostCol, '=', host).where(this.userCol, '=', username).where('store', '=', this.store);
  }

  /** Archives one item; resolves with its id once committed. `ts` is the id's time. */
  async append(host: string, username: string, item: NewItem): Promise<string> {
    const row = this.row(host, username, item);
    await this.queue.insert(this.t, row);
    return row.id;
  }

  /**
   * Archives one item unless the archive holds `limit` items already: 'full' then, and nothing
   * is written. On PostgreSQL the account's row is locked, so writers on other nodes cannot
   * overshoot the limit together.
   */
  async appendWithin(host: string, username: string, item: NewItem, limit: number): Promise<string | 'full'> {
    const row = this.row(host, username, item);
    return this.queue.write(async (trx) => {
      await this.lockOwner(trx, host, username);
      if ((await this.boundedCount({ host, username }, limit - 1, trx)) === undefined) return 'full';
      await trx.insertInto(this.t).values(row).execute();
      return row.id;
    });
  }

  /** Archives many items of one archive in one transaction, in batches (bulk loads, imports); not queued. */
  async appendMany(host: string, username: string, items: NewItem[], batchSize = 500): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < items.length; i += batchSize) {
        await trx
          .insertInto(this.t)
          .values(items.slice(i, i + batchSize).map((m) => this.row(host, username, m)))
          .execute();
      }
    });
  }

  private row(host: string, username: string, m: NewItem): ArchiveItemTable {
    const id = m.id ?? this.ids.next();
    const ts = idTime(id);
    if (ts === undefined) throw new Error(`not an archive id: ${id}`);
    // Object literals of a fixed shape (a spread with computed keys cost ~2% of the event loop's
    // time in the MAM bench, one row per archived message).
    const { store } = this;
    const { withBare: with_bare, withResource: with_resource, direction, stanza } = m;
    if (this.owner === 'account') return { host, username, store, id, ts, with_bare, with_resource, direction, stanza };
    return { service: host, node: username, store, id, ts, with_bare, with_resource, direction, stanza } as unknown as ArchiveItemTable;
  }

  /** Resolves once the writes queued so far (of every archive of the database) are committed. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** The row of an id in the archive, or undefined when it holds no such item. */
  private byId(db: Kysely<Database & ArchiveTables>, host: string, username: string, id: string) {
    const ts = idTime(id);
    if (ts === undefined) return undefined;
    return this.rows(db, host, username).where('ts', '=', ts).where('id', '=', id);
  }

  /** The key of an id in the archive, or undefined when it holds no such item. */
  async key(host: string, username: string, id: string): Promise<ArchiveKey | undefined> {
    const row = await this.byId(this.db, host, username, id)?.select(['ts', 'id']).executeTakeFirst();
    return row ? { ts: Number(row.ts), id: row.id } : undefined;
  }

  /** One archived item, or undefined. */
  async get(host: string, username: string, id: string): Promise<ArchivedMessage | undefined> {
    const row = await this.byId(this.db, host, username, id)?.selectAll().executeTakeFirst();
    return row ? toMessage(row) : undefined;
  }

  /**
   * Replaces the stanza of an archived item with what `change` makes of it (a tombstone), after
   * the writes queued before; false when the archive has no such id or `change` returns undefined.
   */
  update(host: string, username: string, id: string, change: (item: ArchivedMessage) => string | undefined): Promise<boolean> {
    return this.queue.write(async (trx) => {
      const row = await this.byId(trx, host, username, id)?.selectAll().executeTakeFirst();
      const stanza = row && change(toMessage(row));
      if (stanza === undefined) return false;
      await trx
        .updateTable(this.t)
        .set({ stanza })
        .where(this.hostCol, '=', host)
        .where(this.userCol, '=', username)
        .where('store', '=', this.store)
        .where('ts', '=', row!.ts)
        .where('id', '=', id)
        .execute();
      return true;
    });
  }

  private async mustKey(host: string, username: string, id: string): Promise<ArchiveKey> {
    const key = await this.key(host, username, id);
    if (!key) throw new ArchiveItemNotFound(id);
    return key;
  }

  /**
   * One page of a result set. Throws ArchiveItemNotFound when an id it names is not in the
   * archive (XEP-0313 §4.1.3 and §4.3.2).
   */
  async page(host: string, username: string, req: PageRequest): Promise<Page> {
    // The result set: the filter's bounds.
    let lower: Bound | undefined = req.start === undefined ? undefined : { ts: req.start };
    let upper: Bound | undefined = req.end === undefined ? undefined : { ts: req.end };
    if (req.afterId !== undefined) lower = tighterLower(lower, await this.mustKey(host, username, req.afterId));
    if (req.beforeId !== undefined) upper = tighterUpper(upper, await this.mustKey(host, username, req.beforeId));
    let keys: ArchiveKey[] | undefined;
    if (req.ids !== undefined) {
      keys = [];
      for (const id of new Set(req.ids)) keys.push(await this.mustKey(host, username, id));
    }
    const set: Range = { host, username, with: req.with, keys, lower, upper };

    // The page: RSM's after/before narrow it; <before/> pages backwards.
    const backward = req.before !== undefined;
    let pageLower = lower;
    let pageUpper = upper;
    if (req.after !== undefined) pageLower = tighterLower(pageLower, await this.mustKey(host, username, req.after));
    if (req.before) pageUpper = tighterUpper(pageUpper, await this.mustKey(host, username, req.before));

    const max = Math.max(0, Math.floor(req.max));
    const rows = await this.range({ ...set, lower: pageLower, upper: pageUpper })
      .selectAll()
      .orderBy('ts', backward ? 'desc' : 'asc')
      .orderBy('id', backward ? 'desc' : 'asc')
      .limit(max + 1)
      .execute();
    const complete = rows.length <= max;
    const items = rows.slice(0, max).map(toMessage);
    if (backward) items.reverse();

    const page: Page = { items, complete };
    if (req.countLimit <= 0) return page;
    // The page holds the whole set: no need to count it.
    const wholeSet = complete && max > 0 && req.after === undefined && (!backward || req.before === '');
    if (wholeSet) {
      page.count = items.length;
      if (items.length > 0) page.index = 0;
      return page;
    }
    const setKey = JSON.stringify([host, username, req.with, req.start, req.end, req.afterId, req.beforeId, req.ids, req.countLimit]);
    const known = this.uncountable.get(setKey);
    if (known !== undefined && Date.now() - known < UNCOUNTABLE_TTL_MS) return page;
    const count = await this.boundedCount(set, req.countLimit);
    if (count === undefined) {
      this.uncountable.delete(setKey);
      this.uncountable.set(setKey, Date.now());
      if (this.uncountable.size > UNCOUNTABLE_ENTRIES) this.uncountable.delete(this.uncountable.keys().next().value!);
      return page;
    }
    this.uncountable.delete(setKey);
    page.count = count;
    if (items.length === 0) return page;
    if (!backward && req.after === undefined) page.index = 0;
    else if (backward && req.before === '') page.index = count - items.length;
    else page.index = (await this.boundedCount({ ...set, upper: tighterUpper(upper, items[0]!) }, req.countLimit)) ?? undefined;
    return page;
  }

  /** Rows in the range, counted up to `limit`; undefined when there are more. */
  private async boundedCount(range: Range, limit: number, db = this.db): Promise<number | undefined> {
    const inner = this.range(range, db)
      .select('id')
      .limit(limit + 1);
    const row = await db
      .selectFrom(inner.as('r'))
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > limit ? undefined : n;
  }

  private range(r: Range, db = this.db) {
    return this.rows(db, r.host, r.username).where((eb) => {
      const and: Expression<SqlBool>[] = [];
      if (r.with) {
        if (r.with.bare !== undefined) and.push(eb('with_bare', '=', r.with.bare));
        if (r.with.resource !== undefined) and.push(eb('with_resource', '=', r.with.resource));
      }
      if (r.lower) and.push(bound(eb, r.lower, '>'));
      if (r.upper) and.push(bound(eb, r.upper, '<'));
      if (r.keys) {
        // An empty list is `1 = 0`: nothing.
        and.push(eb.or(r.keys.map((k) => eb.and([eb('ts', '=', k.ts), eb('id', '=', k.id)]))));
      }
      return eb.and(and);
    });
  }

  /** The rows of one archive, as a condition (for updates and deletes). */
  private owns(eb: Eb, host: string, username: string): Expression<SqlBool> {
    return eb.and([eb(this.hostCol, '=', host), eb(this.userCol, '=', username), eb('store', '=', this.store)]);
  }

  /** The first and last items of the archive (XEP-0313 §5 metadata). */
  async ends(host: string, username: string): Promise<{ first: ArchiveKey; last: ArchiveKey } | undefined> {
    const end = (dir: 'asc' | 'desc') => this.rows(this.db, host, username).select(['ts', 'id']).orderBy('ts', dir).orderBy('id', dir).limit(1).executeTakeFirst();
    const first = await end('asc');
    const last = await end('desc');
    if (!first || !last) return undefined;
    return { first: { ts: Number(first.ts), id: first.id }, last: { ts: Number(last.ts), id: last.id } };
  }

  /** How many items the archive holds. */
  async count(host: string, username: string): Promise<number> {
    const row = await this.rows(this.db, host, username)
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * A queue's consumer (offline messages): hands the archive's items, oldest first, to
   * `handOver`, which returns how many of them it handed on (a prefix: it stops when its
   * session goes away); those items are then deleted. One transaction with the owner locked
   * (PostgreSQL; SQLite serializes transactions), so two consumers at once never both get the
   * same items. A crash between the hand-over and the commit hands them over again next time:
   * at least once, never lost.
   */
  async consume(host: string, username: string, handOver: (items: ArchivedMessage[]) => number): Promise<number> {
    // Most archives consumed are empty (a login with no offline messages): no transaction then.
    if (!(await this.rows(this.db, host, username).select('id').limit(1).executeTakeFirst())) return 0;
    return this.db.transaction().execute(async (trx) => {
      await this.lockOwner(trx, host, username);
      const rows = await this.rows(trx, host, username).selectAll().orderBy('ts').orderBy('id').execute();
      const items = rows.map(toMessage);
      const handed = Math.max(0, Math.min(items.length, handOver(items)));
      if (handed === 0) return 0;
      await trx
        .deleteFrom(this.t)
        .where((eb) => eb.and([this.owns(eb, host, username), bound(eb, items[handed - 1]!, '<=')]))
        .execute();
      return handed;
    });
  }

  /**
   * Deletes the items of one archive with these ids, after the writes queued before (a queue's
   * items taken back before a consumer got them); resolves with the ids that were there.
   */
  removeItems(host: string, username: string, ids: readonly string[]): Promise<Set<string>> {
    const keys = ids.flatMap((id) => {
      const ts = idTime(id);
      return ts === undefined ? [] : [{ ts, id }];
    });
    if (keys.length === 0) return Promise.resolve(new Set());
    return this.queue.write(async (trx) => {
      await this.lockOwner(trx, host, username);
      const removed = new Set<string>();
      for (let i = 0; i < keys.length; i += 500) {
        const batch = keys.slice(i, i + 500);
        const rows = await trx
          .deleteFrom(this.t)
          .where((eb) => eb.and([this.owns(eb, host, username), eb.or(batch.map((k) => eb.and([eb('ts', '=', k.ts), eb('id', '=', k.id)])))]))
          .returning('id')
          .execute();
        for (const row of rows) removed.add(row.id);
      }
      return removed;
    });
  }

  /** Serializes the writers of an account's archive on PostgreSQL (a row lock on the account). */
  private async lockOwner(trx: Kysely<Database & ArchiveTables>, host: string, username: string): Promise<void> {
    if (this.storage.driver !== 'postgres' || this.owner !== 'account') return;
    await trx.selectFrom('account').select('host').where('host', '=', host).where('username', '=', username).forUpdate().execute();
  }

  /**
   * Deletes the items of every archive under `host` archived before `cutoff` (ms), oldest
   * first (XEP-0313 §3.2: only the oldest go, no holes). Archive by archive, so each delete is a
   * range of the primary key. Returns how many rows went.
   */
  async purgeBefore(host: string, cutoff: number, batch = 1000): Promise<number> {
    let deleted = 0;
    for (let after = ''; ;) {
      const owners = await this.owners(host, after, 500);
      if (owners.length === 0) return deleted;
      for (const username of owners) deleted += await this.purgeArchive(host, username, cutoff, batch);
      after = owners[owners.length - 1]!;
    }
  }

  /**
   * Deletes the items of one archive archived before `cutoff` (ms), oldest first, `batch` rows
   * per statement: each delete is a range of the primary key. Returns how many rows went.
   */
  async purgeArchive(host: string, username: string, cutoff: number, batch = 1000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const oldest = await this.rows(this.db, host, username).select(['ts', 'id']).where('ts', '<', cutoff).orderBy('ts').orderBy('id').limit(batch).execute();
      if (oldest.length === 0) return deleted;
      const last = oldest[oldest.length - 1]!;
      const result = await this.db
        .deleteFrom(this.t)
        .where((eb) => eb.and([this.owns(eb, host, username), bound(eb, { ts: Number(last.ts), id: last.id }, '<=')]))
        .executeTakeFirst();
      deleted += Number(result.numDeletedRows);
      if (oldest.length < batch) return deleted;
    }
  }

  /** Deletes a whole archive, after the writes queued before (an account's goes by cascade; a room's when the room goes). */
  removeArchive(host: string, username: string): Promise<number> {
    return this.queue.write(async (trx) => {
      const result = await trx
        .deleteFrom(this.t)
        .where((eb) => this.owns(eb, host, username))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  /** The owners (local parts) of the archives under `host` that hold items. */
  async archives(host: string): Promise<string[]> {
    const rows = await this.db.selectFrom(this.t).select(this.userCol).distinct().where(this.hostCol, '=', host).where('store', '=', this.store).execute();
    // The column's real name (typed as the account archives').
    return rows.map((r) => (r as unknown as Record<string, string>)[this.userCol]!);
  }

  /**
   * The next `limit` owners after `after` whose archives retention visits: for accounts the
   * accounts of `host` (keyset over the account table, no scan of the archives); for services
   * those that hold items.
   */
  private async owners(host: string, after: string, limit: number): Promise<string[]> {
    if (this.owner === 'service')
      return (await this.archives(host))
        .filter((o) => o > after)
        .sort()
        .slice(0, limit);
    const rows = await this.db.selectFrom('account').select('username').where('host', '=', host).where('username', '>', after).orderBy('username').limit(limit).execute();
    return rows.map((r) => r.username);
  }
}

/** (ts, id) against a bound: an exclusive key bound, or an inclusive ts bound without an id. */
function bound(eb: Eb, b: Bound, op: '>' | '<' | '<='): Expression<SqlBool> {
  if (b.id === undefined) return eb('ts', op === '>' ? '>=' : '<=', b.ts);
  return eb(eb.refTuple('ts', 'id'), op, eb.tuple(b.ts, b.id));
}

function toMessage(row: ArchiveItemTable): ArchivedMessage {
  return {
    id: row.id,
    ts: Number(row.ts),
    withBare: row.with_bare,
    withResource: row.with_resource,
    direction: row.direction,
    stanza: row.stanza,
  };
}
