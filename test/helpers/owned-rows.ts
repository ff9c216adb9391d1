// Counts, in every table that has host and username columns, the rows of one account: what
// deleting the account must bring to zero.
import { sql } from 'kysely';
import type { Storage } from '../../src/storage/database.js';

export async function rowsOwnedBy(storage: Storage, host: string, username: string): Promise<Record<string, number>> {
  // On PostgreSQL only this storage's own schema (other tests may share the database).
  const schema = storage.driver === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(storage.db)).rows[0]?.s : undefined;
  const tables = (await storage.db.introspection.getTables()).filter((t) => schema === undefined || t.schema === schema);
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const columns = new Set(table.columns.map((c) => c.name));
    if (!columns.has('host') || !columns.has('username')) continue;
    const row = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table.name)} where host = ${host} and username = ${username}`.execute(storage.db);
    counts[table.name] = Number(row.rows[0]?.n ?? 0);
  }
  return counts;
}
