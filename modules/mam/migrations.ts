// The user archives moved from tables of their own (archive_message, archive_prefs) into the
// store kinds: the archive kind (store 'mam') and a keyval store ('mam_prefs').
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';

export const mamMigrations = movedToStores(['archive_message', 'archive_prefs'], async (db) => {
  await sql`insert into archive (host, username, store, ts, id, with_bare, with_resource, direction, stanza)
    select host, username, 'mam', ts, id, with_bare, with_resource, direction, stanza from archive_message`.execute(db);
  // The lists are JSON arrays already.
  await sql`insert into user_data (host, username, store, key, value, expires_at)
    select host, username, 'mam_prefs', '', '{"default":"' || default_mode || '","always":' || always_jids || ',"never":' || never_jids || '}', null
    from archive_prefs`.execute(db);
});
