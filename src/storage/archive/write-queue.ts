// Group commit for the archive writes of one database. Writes queue up; one transaction runs at
// a time, and every write queued while it runs is committed together in the next one, so a
// busy server makes one commit (one fsync, one round trip per statement) for many messages.
// Consecutive inserts into one table become one multi-row INSERT (row-inserter.ts). A write's promise resolves
// only once its transaction has committed. When a shared transaction fails, each of its writes
// is retried in a transaction of its own, so a bad one (say, for an account deleted meanwhile)
// fails alone (unless the database is unreachable: then the whole batch fails at once). Writes
// commit in the order they were queued.
//
// On an SQLite file, runs of plain inserts go to the worker thread of SqliteWriter (their
// transaction and sync happen off the event loop); writes that need a Kysely transaction
// (`write`) run together on the main connection once the inserts queued before have committed.
import type { Kysely } from 'kysely';
import { isStorageUnavailable } from '../errors.js';
import type { InsertGroup, SqliteWriter } from '../sqlite-writer.js';
import { valuesInserter, type RowInserter } from './row-inserter.js';

interface Job {
  insert?: { table: string; row: object };
  run?: (trx: Kysely<any>) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class WriteQueue {
  private pending: Job[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<any>,
    private readonly writer?: SqliteWriter,
    private readonly inserter: RowInserter = valuesInserter,
  ) {}

  /** Inserts `row` into `table` in the next transaction; resolves once committed. */
  insert(table: string, row: object): Promise<void> {
    return this.queue({ insert: { table, row } }) as Promise<void>;
  }

  /** Runs `run` in the next transaction, after the writes queued before it; resolves with its result once committed. */
  write<T>(run: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    return this.queue({ run }) as Promise<T>;
  }

  /** Resolves once every write queued so far has committed (or failed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private queue(job: Omit<Job, 'resolve' | 'reject'>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.push({ insert: job.insert, run: job.run, resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // The first transaction waits for the end of this turn of the event loop, so the writes of
    // every socket read in this turn join it. (On SQLite a transaction runs without yielding to
    // I/O, so without this wait every write would get a transaction, and a sync, of its own.)
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const jobs = this.pending.splice(0);
      if (!this.writer) await this.commit(jobs, (batch) => this.inTransaction(batch));
      else for (const segment of segments(jobs)) await this.commit(segment, (batch) => this.executeSegment(batch));
    }
    this.running = undefined;
  }

  /** A run of inserts in the writer's thread, or a run of `write` jobs in one transaction on the main connection. */
  private async executeSegment(jobs: Job[]): Promise<unknown[]> {
    if (jobs[0]!.run) return this.inTransaction(jobs);
    await this.writer!.insert(insertGroups(jobs));
    return jobs.map(() => undefined);
  }

  private async inTransaction(jobs: Job[]): Promise<unknown[]> {
    // Inserts into one table that fit one statement: that statement alone is atomic, and one
    // round trip to PostgreSQL instead of three (BEGIN, INSERT, COMMIT).
    const table = jobs[0]!.insert?.table;
    if (table !== undefined && jobs.length <= this.inserter.maxRows && jobs.every((j) => j.insert?.table === table)) {
      await this.inserter.insert(
        this.db,
        table,
        jobs.map((j) => j.insert!.row),
      );
      return jobs.map(() => undefined);
    }
    return this.db.transaction().execute((trx) => execute(trx, jobs, this.inserter));
  }

  private async commit(jobs: Job[], execute: (jobs: Job[]) => Promise<unknown[]>): Promise<void> {
    let results: unknown[];
    try {
      results = await execute(jobs);
    } catch (err) {
      // The database is unreachable: every write of the batch fails alike, at once (retrying
      // each alone would take a connection attempt, up to its time-out, per write).
      if (jobs.length === 1 || isStorageUnavailable(err)) {
        for (const job of jobs) job.reject(err);
        return;
      }
      for (const job of jobs) await this.commit([job], execute);
      return;
    }
    jobs.forEach((job, i) => job.resolve(results[i]));
  }
}

async function execute(trx: Kysely<any>, jobs: Job[], inserter: RowInserter): Promise<unknown[]> {
  const results: unknown[] = [];
  for (let i = 0; i < jobs.length;) {
    const table = jobs[i]!.insert?.table;
    if (table === undefined) {
      results.push(await jobs[i]!.run!(trx));
      i++;
      continue;
    }
    let end = i;
    while (end < jobs.length && end - i < inserter.maxRows && jobs[end]!.insert?.table === table) end++;
    await inserter.insert(
      trx,
      table,
      jobs.slice(i, end).map((j) => j.insert!.row),
    );
    for (; i < end; i++) results.push(undefined);
  }
  return results;
}

/** The jobs cut into runs of inserts and runs of `write` jobs, in order. */
function segments(jobs: Job[]): Job[][] {
  const out: Job[][] = [];
  for (const job of jobs) {
    const last = out[out.length - 1];
    if (last && !last[0]!.insert === !job.insert) last.push(job);
    else out.push([job]);
  }
  return out;
}

/** Consecutive inserts into one table grouped, in order. */
function insertGroups(jobs: Job[]): InsertGroup[] {
  const groups: InsertGroup[] = [];
  for (const { insert } of jobs) {
    const last = groups[groups.length - 1];
    if (last?.table === insert!.table) last.rows.push(insert!.row);
    else groups.push({ table: insert!.table, rows: [insert!.row] });
  }
  return groups;
}
