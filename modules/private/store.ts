// Private XML (XEP-0049): one row per account and stored element, keyed by the element's
// namespace and name. The foreign key cascades, so deleting the account deletes its data.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { createUserTable, millis, type Migration } from '../../src/storage/migrations.js';

export interface PrivateXmlTable {
  host: string;
  username: string;
  namespace: string;
  name: string;
  xml: string;
  /** Bytes of `xml` (UTF-8), for the per-account quota. */
  size: number;
  updated_at: number;
}

interface Tables {
  private_xml: PrivateXmlTable;
}

export const privateMigrations: Migration[] = [
  {
    version: 1,
    name: 'private_xml',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'private_xml')
        .addColumn('namespace', 'varchar(1023)', (c) => c.notNull())
        .addColumn('name', 'varchar(1023)', (c) => c.notNull())
        .addColumn('xml', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('updated_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('private_xml_pk', ['host', 'username', 'namespace', 'name'])
        .execute();
    },
  },
];

export interface PrivateEntry {
  namespace: string;
  name: string;
  xml: string;
}

export class PrivateXmlStore {
  private readonly db: Kysely<Database & Tables>;

  constructor(storage: Storage) {
    this.db = storage.tables<Tables>();
  }

  async get(host: string, username: string, namespace: string, name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('private_xml')
      .select('xml')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.xml;
  }

  /**
   * Stores the entries (replacing those with the same namespace and name) if the account's
   * total stays within `maxBytes`; returns false, changing nothing, when it would not.
   */
  async put(host: string, username: string, entries: readonly PrivateEntry[], maxBytes: number): Promise<boolean> {
    const key = (e: { namespace: string; name: string }) => `${e.name} ${e.namespace}`;
    const incoming = new Map(entries.map((e) => [key(e), e]));
    return this.db.transaction().execute(async (trx) => {
      const rows = await trx.selectFrom('private_xml').select(['namespace', 'name', 'size']).where('host', '=', host).where('username', '=', username).execute();
      let total = 0;
      for (const row of rows) if (!incoming.has(key(row))) total += Number(row.size);
      for (const e of incoming.values()) total += Buffer.byteLength(e.xml, 'utf8');
      if (total > maxBytes) return false;
      const updated_at = Date.now();
      for (const e of incoming.values()) {
        const size = Buffer.byteLength(e.xml, 'utf8');
        await trx
          .insertInto('private_xml')
          .values({ host, username, namespace: e.namespace, name: e.name, xml: e.xml, size, updated_at })
          .onConflict((oc) => oc.columns(['host', 'username', 'namespace', 'name']).doUpdateSet({ xml: e.xml, size, updated_at }))
          .execute();
      }
      return true;
    });
  }
}
