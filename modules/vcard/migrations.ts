// vCards moved from a table of their own (vcard) into a keyval store ('vcard', XML text).
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';

export const vcardMigrations = movedToStores(['vcard'], async (db) => {
  await sql`insert into user_data (host, username, store, key, value, expires_at) select host, username, 'vcard', '', vcard, null from vcard`.execute(db);
});
