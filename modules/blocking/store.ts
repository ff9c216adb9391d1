// The blocklists (XEP-0191): one row per blocked JID, owned by the account (the foreign key
// cascades, so deleting the account deletes its list).
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, type Migration } from '../../src/storage/migrations.js';

export interface BlocklistItemTable {
  host: string;
  username: string;
  /** The blocked JID, prepared (RFC 7622): a full, bare or domain JID, or domain/resource. */
  jid: string;
}

interface Tables {
  blocklist_item: BlocklistItemTable;
}

export const blockingMigrations: Migration[] = [
  {
    version: 1,
    name: 'blocklist_item',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'blocklist_item')
        // A JID is at most three parts of 1023 octets and two separators.
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addPrimaryKeyConstraint('blocklist_item_pk', ['host', 'username', 'jid'])
        .execute();
    },
  },
];

export class BlocklistStore {
  private readonly db: Kysely<Database & Tables>;

  constructor(storage: Storage) {
    this.db = storage.tables<Tables>();
  }

  /** The items of one list, as a query (on the database or in a transaction). */
  private items(db: Kysely<Database & Tables>, host: string, username: string) {
    return db.selectFrom('blocklist_item').select('jid').where('host', '=', host).where('username', '=', username);
  }

  async list(host: string, username: string): Promise<string[]> {
    const rows = await this.items(this.db, host, username).orderBy('jid').execute();
    return rows.map((r) => r.jid);
  }

  /**
   * Adds items, keeping the list at most `max` long; returns the items that were new, or
   * undefined (and changes nothing) when they would not fit.
   */
  async add(host: string, username: string, jids: readonly string[], max: number): Promise<string[] | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const existing = new Set((await this.items(trx, host, username).execute()).map((r) => r.jid));
      const added = [...new Set(jids)].filter((j) => !existing.has(j));
      if (added.length === 0) return added;
      if (existing.size + added.length > max) return undefined;
      await trx
        .insertInto('blocklist_item')
        .values(added.map((jid) => ({ host, username, jid })))
        .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doNothing())
        .execute();
      return added;
    });
  }

  /** Removes the given items; returns the ones that were there. */
  async remove(host: string, username: string, jids: readonly string[]): Promise<string[]> {
    if (jids.length === 0) return [];
    return this.db.transaction().execute(async (trx) => {
      const present = (await this.items(trx, host, username).where('jid', 'in', [...new Set(jids)]).execute()).map((r) => r.jid);
      if (present.length > 0) {
        await trx.deleteFrom('blocklist_item').where('host', '=', host).where('username', '=', username).where('jid', 'in', present).execute();
      }
      return present;
    });
  }

  /** Empties the list; returns what it held. */
  async clear(host: string, username: string): Promise<string[]> {
    return this.db.transaction().execute(async (trx) => {
      const present = (await this.items(trx, host, username).execute()).map((r) => r.jid);
      await trx.deleteFrom('blocklist_item').where('host', '=', host).where('username', '=', username).execute();
      return present;
    });
  }
}
