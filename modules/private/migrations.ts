// Private XML moved from a table of its own (private_xml) into a map store ('private'): one
// entry per element, keyed by its namespace and name in Clark notation ({namespace}name).
import { sql } from 'kysely';
import { movedToStores } from '../../src/storage/migrations.js';

export const privateKey = (namespace: string, name: string): string => `{${namespace}}${name}`;

export const privateMigrations = movedToStores(['private_xml'], async (db) => {
  await sql`insert into user_data (host, username, store, key, value, expires_at)
    select host, username, 'private', '{' || namespace || '}' || name, xml, null from private_xml`.execute(db);
});
