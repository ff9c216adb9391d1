// How the group commit (write-queue.ts) puts a run of rows of one table into the database, in
// one statement.
//
// By default, a multi-row INSERT ... VALUES (Kysely's insertInto().values()): one parameter per
// value, so at most 500 rows per statement (PostgreSQL takes at most 65,535 parameters).
//
// On PostgreSQL, INSERT ... SELECT * FROM unnest($1::text[], $2::int8[], ...): one array
// parameter per column, whatever the number of rows, so nothing is compiled per row and the
// server parses a statement of a few hundred bytes. Measured here (2,000 archive rows, one
// batch, loopback): 54 ms against 130-152 ms for four 500-row VALUES statements in a
// transaction, and 6.4 against 10-20 µs of Node's CPU per row. A batch whose values are not all
// of one plain type per column (strings, numbers, booleans), or whose rows do not all name the
// same columns (VALUES gives a missing one its default), takes the VALUES way.
import { sql, type Kysely } from 'kysely';

export interface RowInserter {
  /** Most rows one statement takes. */
  readonly maxRows: number;
  /** Inserts `rows` (at most maxRows, at least one) into `table` in one statement. */
  insert(db: Kysely<any>, table: string, rows: readonly object[]): Promise<void>;
}

export const valuesInserter: RowInserter = {
  maxRows: 500,
  async insert(db, table, rows) {
    await db
      .insertInto(table)
      .values(rows as object[])
      .execute();
  },
};

export const unnestInserter: RowInserter = {
  maxRows: 10_000,
  async insert(db, table, rows) {
    const columns = Object.keys(rows[0]!);
    const arrays = columns.map(() => new Array<unknown>(rows.length));
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as Record<string, unknown>;
      if (r > 0 && !sameColumns(row, columns)) return valuesInserter.insert(db, table, rows);
      for (let c = 0; c < columns.length; c++) arrays[c]![r] = row[columns[c]!] ?? null;
    }
    const types = arrays.map(arrayType);
    if (types.includes(undefined)) return valuesInserter.insert(db, table, rows);
    const unnested = sql.join(arrays.map((values, c) => sql`${values}::${sql.raw(types[c]!)}[]`));
    await sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) select * from unnest(${unnested})`.execute(db);
  },
};

function sameColumns(row: object, columns: readonly string[]): boolean {
  let n = 0;
  for (const key in row) {
    if (!Object.hasOwn(row, key)) continue;
    if (!columns.includes(key)) return false;
    n++;
  }
  return n === columns.length;
}

/** The PostgreSQL element type of a column's values; undefined when they have none in common (or are all null). */
function arrayType(values: readonly unknown[]): string | undefined {
  let type: string | undefined;
  for (const value of values) {
    if (value === null) continue;
    const t = typeof value === 'string' ? 'text' : typeof value === 'number' ? (Number.isSafeInteger(value) ? 'int8' : 'float8') : typeof value === 'boolean' ? 'bool' : undefined;
    if (t === undefined) return undefined;
    if (type === undefined || type === t) type = t;
    else if ((type === 'int8' && t === 'float8') || (type === 'float8' && t === 'int8')) type = 'float8';
    else return undefined;
  }
  return type;
}
