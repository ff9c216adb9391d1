// The core schema. Rows a user owns reference account(host, username) with ON DELETE CASCADE,
// so deleting an account removes everything it owns in one statement, on both databases.
import type { Kysely } from 'kysely';
import { createArchiveTables } from './archive/store.js';
import { createUserTable, millis, type Migration } from './migrations.js';

export const coreMigrations: Migration[] = [
  {
    version: 1,
    name: 'accounts',
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('account')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('username', 'varchar(1023)', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('account_pk', ['host', 'username'])
        .execute();
      await createUserTable(db, 'account_credential')
        .addColumn('mechanism', 'varchar(32)', (c) => c.notNull())
        .addColumn('salt', 'varchar(200)', (c) => c.notNull())
        .addColumn('iterations', 'integer', (c) => c.notNull())
        .addColumn('stored_key', 'varchar(200)', (c) => c.notNull())
        .addColumn('server_key', 'varchar(200)', (c) => c.notNull())
        .addPrimaryKeyConstraint('account_credential_pk', ['host', 'username', 'mechanism'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'user_data',
    async up(db: Kysely<any>) {
      await createUserTable(db, 'user_data')
        .addColumn('store', 'varchar(64)', (c) => c.notNull())
        .addColumn('key', 'varchar(1023)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('expires_at', millis)
        .addPrimaryKeyConstraint('user_data_pk', ['host', 'username', 'store', 'key'])
        .execute();
    },
  },
  {
    version: 3,
    name: 'store_kinds',
    // The tables of the store kinds (stores.ts): keyval and map live in user_data, whose keys
    // now hold any JID (three parts of 1023 octets and two separators); the archives in
    // archive and service_archive. SQLite does not enforce varchar lengths.
    async up(db: Kysely<any>, driver) {
      if (driver === 'postgres')
        await db.schema
          .alterTable('user_data')
          .alterColumn('key', (c) => c.setDataType('varchar(3071)'))
          .execute();
      await createArchiveTables(db, driver);
    },
  },
  {
    version: 4,
    name: 'account_disabled',
    // XEP-0133 disable-user: a disabled account keeps its data and cannot log in; null = enabled.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('account').addColumn('disabled_at', millis).execute();
    },
  },
];
