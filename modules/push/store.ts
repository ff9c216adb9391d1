// XEP-0357 push registrations: one row per account, push service JID and node, with the
// publish-options form the client gave (XML, or null). Rows reference account(host, username)
// ON DELETE CASCADE, so deleting the account deletes its registrations.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, millis, type Migration } from '../../src/storage/migrations.js';

export interface PushRegistrationTable {
  host: string;
  username: string;
  /** The XMPP Push Service (the App Server's pubsub service), a JID in its prepared form. */
  service: string;
  /** The pubsub node; '' when the client named none. */
  node: string;
  /** The publish-options data form (serialized XML), or null. */
  form: string | null;
  /** When it was last enabled, ms since the epoch. */
  updated_at: number;
}

interface Tables {
  push_registration: PushRegistrationTable;
}

export const pushMigrations: Migration[] = [
  {
    version: 1,
    name: 'push_registration',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'push_registration')
        .addColumn('service', 'varchar(1023)', (c) => c.notNull())
        .addColumn('node', 'varchar(1023)', (c) => c.notNull())
        .addColumn('form', 'text')
        .addColumn('updated_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('push_registration_pk', ['host', 'username', 'service', 'node'])
        .execute();
    },
  },
];

export interface Registration {
  service: string;
  /** '' when none. */
  node: string;
  form: string | undefined;
}

export type EnableResult = 'enabled' | 'updated' | 'full';

export class PushStore {
  private readonly db: Kysely<Database & Tables>;

  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
  ) {
    this.db = storage.tables<Tables>();
  }

  /** Creates or updates the table (idempotent). */
  migrate(): Promise<string[]> {
    return this.storage.migrate('push', pushMigrations);
  }

  /**
   * Enables (service, node) for the account, or replaces its publish options when enabled
   * already (XEP-0357 §5: the last request's options win). 'full' when the account has `limit`
   * other registrations, and nothing is written.
   */
  async enable(host: string, username: string, reg: Registration, limit: number): Promise<EnableResult> {
    return this.db.transaction().execute(async (trx) => {
      // Serializes one account's writers on PostgreSQL (SQLite runs one write transaction at a time).
      if (this.storage.driver === 'postgres') {
        await trx.selectFrom('account').select('host').where('host', '=', host).where('username', '=', username).forUpdate().execute();
      }
      const rows = await trx
        .selectFrom('push_registration')
        .select(['service', 'node'])
        .where('host', '=', host)
        .where('username', '=', username)
        .execute();
      const form = reg.form ?? null;
      if (rows.some((r) => r.service === reg.service && r.node === reg.node)) {
        await trx
          .updateTable('push_registration')
          .set({ form, updated_at: this.now() })
          .where('host', '=', host)
          .where('username', '=', username)
          .where('service', '=', reg.service)
          .where('node', '=', reg.node)
          .execute();
        return 'updated';
      }
      if (rows.length >= limit) return 'full';
      await trx
        .insertInto('push_registration')
        .values({ host, username, service: reg.service, node: reg.node, form, updated_at: this.now() })
        .execute();
      return 'enabled';
    });
  }

  /** Removes (service, node), or every node of the service when `node` is undefined; returns how many. */
  async disable(host: string, username: string, service: string, node?: string): Promise<number> {
    let query = this.db
      .deleteFrom('push_registration')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('service', '=', service);
    if (node !== undefined) query = query.where('node', '=', node);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async list(host: string, username: string): Promise<Registration[]> {
    const rows = await this.db
      .selectFrom('push_registration')
      .select(['service', 'node', 'form'])
      .where('host', '=', host)
      .where('username', '=', username)
      .orderBy('updated_at', 'asc')
      .execute();
    return rows.map((r) => ({ service: r.service, node: r.node, form: r.form ?? undefined }));
  }

  async get(host: string, username: string, service: string, node: string): Promise<Registration | undefined> {
    const row = await this.db
      .selectFrom('push_registration')
      .select(['service', 'node', 'form'])
      .where('host', '=', host)
      .where('username', '=', username)
      .where('service', '=', service)
      .where('node', '=', node)
      .executeTakeFirst();
    return row && { service: row.service, node: row.node, form: row.form ?? undefined };
  }
}
