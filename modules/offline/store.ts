// Where offline messages (XEP-0160) wait: one row per stanza, in arrival order per account.
// Rows reference account(host, username) with ON DELETE CASCADE, so deleting an account takes
// its queue with it. The order column `seq` is an integer computed here (the account's highest
// seq + 1) inside the same transaction as the insert, with the account row locked on
// PostgreSQL (SQLite runs one write transaction at a time): portable, no auto-increment DDL.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, millis, type Migration } from '../../src/storage/migrations.js';

export interface OfflineMessageTable {
  host: string;
  username: string;
  /** Arrival order within the account's queue. */
  seq: number;
  /** The message as it arrived (from stamped), serialized XML. */
  stanza: string;
  /** When it was stored, ms since the epoch: the XEP-0203 delay stamp on delivery. */
  created_at: number;
}

export interface OfflineTables {
  offline_message: OfflineMessageTable;
}

export const offlineMigrations: Migration[] = [
  {
    version: 1,
    name: 'offline_message',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'offline_message')
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('offline_message_pk', ['host', 'username', 'seq'])
        .execute();
    },
  },
];

export interface StoredMessage {
  seq: number;
  stanza: string;
  createdAt: number;
}

export type PushResult = 'stored' | 'full';

export interface OfflineStoreOptions {
  now?: () => number;
}

export class OfflineStore {
  private readonly db: Kysely<Database & OfflineTables>;
  private readonly now: () => number;

  constructor(
    private readonly storage: Storage,
    options: OfflineStoreOptions = {},
  ) {
    this.db = storage.tables<OfflineTables>();
    this.now = options.now ?? Date.now;
  }

  /** Creates or updates the table (idempotent; every host's setup may call it). */
  async migrate(): Promise<string[]> {
    return this.storage.migrate('offline', offlineMigrations);
  }

  /**
   * Appends a message to the account's queue unless it holds `limit` messages already.
   * Resolves once the row is committed ('stored'), or with 'full' and nothing written.
   */
  async push(host: string, username: string, stanza: string, limit: number): Promise<PushResult> {
    return this.db.transaction().execute(async (trx) => {
      await this.lockAccount(trx, host, username);
      const row = await trx
        .selectFrom('offline_message')
        .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.max<number | string | null>('seq').as('last')])
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      const count = Number(row?.n ?? 0);
      if (count >= limit) return 'full';
      const seq = Number(row?.last ?? 0) + 1;
      await trx.insertInto('offline_message').values({ host, username, seq, stanza, created_at: this.now() }).execute();
      return 'stored';
    });
  }

  /** How many messages wait for the account. */
  async count(host: string, username: string): Promise<number> {
    const row = await this.db
      .selectFrom('offline_message')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Hands the account's queue, oldest first, to `handOver`, which returns how many of them it
   * handed on (a prefix: it stops when the session goes away); those rows are then deleted.
   * One transaction with the account row locked (PostgreSQL; SQLite serializes transactions),
   * so two sessions coming online at once never both get the same messages. A crash between
   * the hand-over and the commit delivers them again next time: at least once, never lost.
   */
  async drain(host: string, username: string, handOver: (messages: StoredMessage[]) => number): Promise<number> {
    // Most logins find an empty queue: skip the transaction and the lock then. A row committed
    // right after this check is handed over by the writer (see the module's post-store check).
    const any = await this.db
      .selectFrom('offline_message')
      .select('seq')
      .where('host', '=', host)
      .where('username', '=', username)
      .limit(1)
      .executeTakeFirst();
    if (!any) return 0;
    return this.db.transaction().execute(async (trx) => {
      await this.lockAccount(trx, host, username);
      const rows = await trx
        .selectFrom('offline_message')
        .select(['seq', 'stanza', 'created_at'])
        .where('host', '=', host)
        .where('username', '=', username)
        .orderBy('seq', 'asc')
        .execute();
      if (rows.length === 0) return 0;
      const messages = rows.map((r) => ({ seq: Number(r.seq), stanza: r.stanza, createdAt: Number(r.created_at) }));
      const handed = Math.max(0, Math.min(messages.length, handOver(messages)));
      if (handed === 0) return 0;
      await trx
        .deleteFrom('offline_message')
        .where('host', '=', host)
        .where('username', '=', username)
        .where('seq', '<=', messages[handed - 1]!.seq)
        .execute();
      return handed;
    });
  }

  /** Serializes the writers of one account's queue on PostgreSQL (row lock on the account). */
  private async lockAccount(trx: Kysely<Database & OfflineTables>, host: string, username: string): Promise<void> {
    if (this.storage.driver !== 'postgres') return;
    await trx.selectFrom('account').select('host').where('host', '=', host).where('username', '=', username).forUpdate().execute();
  }
}
