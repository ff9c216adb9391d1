// The user message archives (XEP-0313) and their preferences (XEP-0441).
//
// One row per archived message per archive: `archive_message` (host, username, id, ts,
// with_bare, with_resource, direction, stanza), owned by the account (ON DELETE CASCADE).
// Other archives (a MUC room's: modules/muc-mam) keep the same columns in a table of their own,
// with their own names for the two owner columns and no foreign key to an account; the store
// and its paging take the table's names (ArchiveTableNames) and work the same on either.
//
// Order and lookups. The archive order is (ts, id): `ts` is the time encoded in the id (see
// ids.ts), so both orders agree and an id alone gives its row's full key. Hence:
//   - primary key (host, username, ts, id): the whole archive in order, time ranges, and the
//     lookup of an id (its ts is decoded from it): no separate index on id;
//   - index (host, username, with_bare, ts, id): one conversation in order ('with' queries).
// Every page is keyset pagination on (ts, id) over one of these two indexes, forwards or
// backwards, never OFFSET: the cost of a page does not depend on where it sits in the archive.
// Lower bounds (start, after-id, RSM after) are folded into the tightest single one, and so are
// upper bounds, so each query is one index range.
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
// On PostgreSQL the id column uses the "C" collation, so the database orders ids as bytes, as
// JavaScript compares them here (SQLite's default BINARY collation does the same).
import { sql, type CreateTableBuilder, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, millis, type Migration } from '../../src/storage/migrations.js';
import { idTime } from './ids.js';

export type Direction = 'in' | 'out';

export interface ArchiveMessageTable {
  host: string;
  username: string;
  /** The archive id (XEP-0313 UID, the stanza-id the user sees). */
  id: string;
  /** Archive time, ms since the epoch: the time encoded in `id`. */
  ts: number;
  /** The other party's bare JID (the user's own for messages to themselves). */
  with_bare: string;
  /** ... and its resource, '' when none. */
  with_resource: string;
  /** 'out': sent by the user; 'in': received. */
  direction: Direction;
  /** The message as archived, serialized XML. */
  stanza: string;
}

export interface ArchivePrefsTable {
  host: string;
  username: string;
  default_mode: string;
  /** JSON arrays of prepared JIDs. */
  always_jids: string;
  never_jids: string;
}

export interface ArchiveTables {
  archive_message: ArchiveMessageTable;
  archive_prefs: ArchivePrefsTable;
}

/** The names of an archive table: the table and its two owner columns (an archive's address). */
export interface ArchiveTableNames {
  table: string;
  /** The owner columns, in key order: (host, username) for user archives. */
  owner: readonly [string, string];
}

/** The user archives. */
export const USER_ARCHIVE: ArchiveTableNames = { table: 'archive_message', owner: ['host', 'username'] };

/**
 * Creates an archive table: the owner columns, then ts, id, with_bare, with_resource, direction
 * and stanza; primary key (owner, ts, id) and the index (owner, with_bare, ts, id). With
 * `ownedByAccount` the owner columns are an account's (host, username), referencing
 * account(host, username) ON DELETE CASCADE (createUserTable).
 */
export async function createArchiveTable(db: Kysely<any>, names: ArchiveTableNames, driver: Storage['driver'], ownedByAccount: boolean): Promise<void> {
  const [a, b] = names.owner;
  if (ownedByAccount && (a !== 'host' || b !== 'username')) throw new Error(`an account's archive table has the owner columns (host, username), not (${a}, ${b})`);
  const owned: CreateTableBuilder<string, string> = ownedByAccount
    ? createUserTable(db, names.table)
    : db.schema
        .createTable(names.table)
        .addColumn(a, 'varchar(1023)', (c) => c.notNull())
        .addColumn(b, 'varchar(1023)', (c) => c.notNull());
  await owned
    .addColumn('ts', millis, (c) => c.notNull())
    .addColumn('id', 'varchar(32)', (c) => (driver === 'postgres' ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull()))
    .addColumn('with_bare', 'varchar(2047)', (c) => c.notNull())
    .addColumn('with_resource', 'varchar(1023)', (c) => c.notNull().defaultTo(''))
    .addColumn('direction', 'varchar(3)', (c) => c.notNull())
    .addColumn('stanza', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint(`${names.table}_pk`, [a, b, 'ts', 'id'])
    .execute();
  await db.schema
    .createIndex(`${names.table}_with_idx`)
    .on(names.table)
    .columns([a, b, 'with_bare', 'ts', 'id'])
    .execute();
}

export function archiveMigrations(driver: Storage['driver']): Migration[] {
  return [
    {
      version: 1,
      name: 'archive_message',
      async up(db: Kysely<any>) {
        await createArchiveTable(db, USER_ARCHIVE, driver, true);
        await createUserTable(db, 'archive_prefs')
          .addColumn('default_mode', 'varchar(8)', (c) => c.notNull())
          .addColumn('always_jids', 'text', (c) => c.notNull())
          .addColumn('never_jids', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('archive_prefs_pk', ['host', 'username'])
          .execute();
      },
    },
  ];
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

export interface ArchivePrefs {
  default: 'always' | 'roster' | 'never';
  always: string[];
  never: string[];
}

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

type Eb = ExpressionBuilder<Database & ArchiveTables, 'archive_message'>;

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

export interface ArchiveStoreOptions {
  /** Rows per INSERT statement in appendMany (bulk loads). */
  batchSize?: number;
}

export class ArchiveStore {
  private readonly db: Kysely<Database & ArchiveTables>;
  /** Result sets (archive and filter) known to hold more than their count limit -> when found. */
  private readonly uncountable = new Map<string, number>();

  /**
   * The table and owner columns, typed as the user archive's: every archive table has the same
   * columns but these two names (createArchiveTable), so the queries below are the same SQL.
   */
  private readonly t: 'archive_message';
  private readonly hostCol: 'host';
  private readonly userCol: 'username';

  constructor(
    private readonly storage: Storage,
    names: ArchiveTableNames = USER_ARCHIVE,
  ) {
    this.db = storage.tables<ArchiveTables>();
    this.t = names.table as 'archive_message';
    this.hostCol = names.owner[0] as 'host';
    this.userCol = names.owner[1] as 'username';
  }

  /** Creates or updates the tables (idempotent; every host's setup may call it). */
  async migrate(): Promise<string[]> {
    return this.storage.migrate('mam', archiveMigrations(this.storage.driver));
  }

  /** Archives one message; resolves once committed. `ts` is the id's time. */
  async append(host: string, username: string, message: Omit<ArchivedMessage, 'ts'>): Promise<void> {
    await this.db.insertInto(this.t).values(this.row(host, username, message)).execute();
  }

  /** Archives many messages of one account in one transaction, in batches (bulk loads, imports). */
  async appendMany(host: string, username: string, messages: Omit<ArchivedMessage, 'ts'>[], batchSize = 500): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < messages.length; i += batchSize) {
        await trx
          .insertInto(this.t)
          .values(messages.slice(i, i + batchSize).map((m) => this.row(host, username, m)))
          .execute();
      }
    });
  }

  private row(host: string, username: string, m: Omit<ArchivedMessage, 'ts'>): ArchiveMessageTable {
    const ts = idTime(m.id);
    if (ts === undefined) throw new Error(`not an archive id: ${m.id}`);
    const row = { id: m.id, ts, with_bare: m.withBare, with_resource: m.withResource, direction: m.direction, stanza: m.stanza };
    return { ...row, [this.hostCol]: host, [this.userCol]: username } as ArchiveMessageTable;
  }

  /** The key of an id in the archive, or undefined when it holds no such message. */
  async key(host: string, username: string, id: string): Promise<ArchiveKey | undefined> {
    const ts = idTime(id);
    if (ts === undefined) return undefined;
    const row = await this.db
      .selectFrom(this.t)
      .select(['ts', 'id'])
      .where(this.hostCol, '=', host)
      .where(this.userCol, '=', username)
      .where('ts', '=', ts)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { ts: Number(row.ts), id: row.id } : undefined;
  }

  /** One archived message, or undefined. */
  async get(host: string, username: string, id: string): Promise<ArchivedMessage | undefined> {
    const ts = idTime(id);
    if (ts === undefined) return undefined;
    const row = await this.db
      .selectFrom(this.t)
      .selectAll()
      .where(this.hostCol, '=', host)
      .where(this.userCol, '=', username)
      .where('ts', '=', ts)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toMessage(row) : undefined;
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
  private async boundedCount(range: Range, limit: number): Promise<number | undefined> {
    const inner = this.range(range).select('id').limit(limit + 1);
    const row = await this.db
      .selectFrom(inner.as('r'))
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > limit ? undefined : n;
  }

  private range(r: Range) {
    return this.db
      .selectFrom(this.t)
      .where(this.hostCol, '=', r.host)
      .where(this.userCol, '=', r.username)
      .where((eb) => {
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

  /** The first and last messages of the archive (XEP-0313 §5 metadata). */
  async ends(host: string, username: string): Promise<{ first: ArchiveKey; last: ArchiveKey } | undefined> {
    const end = (dir: 'asc' | 'desc') =>
      this.db
        .selectFrom(this.t)
        .select(['ts', 'id'])
        .where(this.hostCol, '=', host)
        .where(this.userCol, '=', username)
        .orderBy('ts', dir)
        .orderBy('id', dir)
        .limit(1)
        .executeTakeFirst();
    const first = await end('asc');
    const last = await end('desc');
    if (!first || !last) return undefined;
    return { first: { ts: Number(first.ts), id: first.id }, last: { ts: Number(last.ts), id: last.id } };
  }

  async getPrefs(host: string, username: string): Promise<ArchivePrefs | undefined> {
    const row = await this.db
      .selectFrom('archive_prefs')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row) return undefined;
    return { default: row.default_mode as ArchivePrefs['default'], always: JSON.parse(row.always_jids), never: JSON.parse(row.never_jids) };
  }

  async setPrefs(host: string, username: string, prefs: ArchivePrefs): Promise<void> {
    const values = { default_mode: prefs.default, always_jids: JSON.stringify(prefs.always), never_jids: JSON.stringify(prefs.never) };
    await this.db
      .insertInto('archive_prefs')
      .values({ host, username, ...values })
      .onConflict((oc) => oc.columns(['host', 'username']).doUpdateSet(values))
      .execute();
  }

  /**
   * Deletes the messages of every account of `host` archived before `cutoff` (ms), oldest
   * first, `batch` rows per statement (XEP-0313 §3.2: only the oldest go, no holes). Account by
   * account, so each delete is a range of the primary key. Returns how many rows went.
   */
  async purgeBefore(host: string, cutoff: number, batch = 1000): Promise<number> {
    let deleted = 0;
    let lastUser = '';
    for (;;) {
      const users = await this.db
        .selectFrom('account')
        .select('username')
        .where('host', '=', host)
        .where('username', '>', lastUser)
        .orderBy('username')
        .limit(500)
        .execute();
      if (users.length === 0) return deleted;
      for (const { username } of users) deleted += await this.purgeArchive(host, username, cutoff, batch);
      lastUser = users[users.length - 1]!.username;
    }
  }

  /**
   * Deletes the messages of one archive archived before `cutoff` (ms), oldest first, `batch`
   * rows per statement: each delete is a range of the primary key. Returns how many rows went.
   */
  async purgeArchive(host: string, username: string, cutoff: number, batch = 1000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const oldest = await this.db
        .selectFrom(this.t)
        .select(['ts', 'id'])
        .where(this.hostCol, '=', host)
        .where(this.userCol, '=', username)
        .where('ts', '<', cutoff)
        .orderBy('ts')
        .orderBy('id')
        .limit(batch)
        .execute();
      if (oldest.length === 0) return deleted;
      const last = oldest[oldest.length - 1]!;
      const result = await this.db
        .deleteFrom(this.t)
        .where(this.hostCol, '=', host)
        .where(this.userCol, '=', username)
        .where((eb) => bound(eb as unknown as Eb, { ts: Number(last.ts), id: last.id }, '<='))
        .executeTakeFirst();
      deleted += Number(result.numDeletedRows);
      if (oldest.length < batch) return deleted;
    }
  }

  /** Replaces the stanza of one archived message (a tombstone); false when the archive has no such id. */
  async replace(host: string, username: string, id: string, stanza: string): Promise<boolean> {
    const ts = idTime(id);
    if (ts === undefined) return false;
    const result = await this.db
      .updateTable(this.t)
      .set({ stanza })
      .where(this.hostCol, '=', host)
      .where(this.userCol, '=', username)
      .where('ts', '=', ts)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Deletes a whole archive (an account's goes by cascade; a room's when the room goes). */
  async removeArchive(host: string, username: string): Promise<number> {
    const result = await this.db.deleteFrom(this.t).where(this.hostCol, '=', host).where(this.userCol, '=', username).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The owners (second owner column) of the archives under `host` that hold messages. */
  async archives(host: string): Promise<string[]> {
    const rows = await this.db.selectFrom(this.t).select(this.userCol).distinct().where(this.hostCol, '=', host).execute();
    // The column's real name (typed as the user archive's).
    return rows.map((r) => (r as unknown as Record<string, string>)[this.userCol]!);
  }
}

/** (ts, id) against a bound: an exclusive key bound, or an inclusive ts bound without an id. */
function bound(eb: Eb, b: Bound, op: '>' | '<' | '<='): Expression<SqlBool> {
  if (b.id === undefined) return eb('ts', op === '>' ? '>=' : '<=', b.ts);
  return eb(eb.refTuple('ts', 'id'), op, eb.tuple(b.ts, b.id));
}

function toMessage(row: ArchiveMessageTable): ArchivedMessage {
  return {
    id: row.id,
    ts: Number(row.ts),
    withBare: row.with_bare,
    withResource: row.with_resource,
    direction: row.direction,
    stanza: row.stanza,
  };
}
