// Blocklists moved from a table of their own (blocklist_item) into a map store ('blocking'):
// one key per blocked JID.
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';

export const blockingMigrations = movedToStores(['blocklist_item'], async (db) => {
  await sql`insert into user_data (host, username, store, key, value, expires_at) select host, username, 'blocking', jid, 'true', null from blocklist_item`.execute(db);
});
