// vCards (XEP-0054): one row per account, the vCard element as XML text. The foreign key
// cascades, so deleting the account deletes its vCard.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, millis, type Migration } from '../../src/storage/migrations.js';

export interface VcardTable {
  host: string;
  username: string;
  vcard: string;
  updated_at: number;
}

interface Tables {
  vcard: VcardTable;
}

export const vcardMigrations: Migration[] = [
  {
    version: 1,
    name: 'vcard',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'vcard')
        .addColumn('vcard', 'text', (c) => c.notNull())
        .addColumn('updated_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('vcard_pk', ['host', 'username'])
        .execute();
    },
  },
];

export class VcardStore {
  private readonly db: Kysely<Database & Tables>;

  constructor(storage: Storage) {
    this.db = storage.tables<Tables>();
  }

  async get(host: string, username: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('vcard').select('vcard').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return row?.vcard;
  }

  async put(host: string, username: string, vcard: string): Promise<void> {
    const updated_at = Date.now();
    await this.db
      .insertInto('vcard')
      .values({ host, username, vcard, updated_at })
      .onConflict((oc) => oc.columns(['host', 'username']).doUpdateSet({ vcard, updated_at }))
      .execute();
  }

  async delete(host: string, username: string): Promise<void> {
    await this.db.deleteFrom('vcard').where('host', '=', host).where('username', '=', username).execute();
  }
}
