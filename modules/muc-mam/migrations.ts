// The room archives moved from a table of their own (muc_archive) into the archive store kind:
// service archives, store 'muc_mam', owned by (service, room) as before.
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';

export const mucMamMigrations = movedToStores(['muc_archive'], async (db) => {
  await sql`insert into service_archive (service, node, store, ts, id, with_bare, with_resource, direction, stanza)
    select service, room, 'muc_mam', ts, id, with_bare, with_resource, direction, stanza from muc_archive`.execute(db);
});
