// What anti_spam keeps: abuse reports (XEP-0377), a host-level table owned by no account (a
// report outlives the reporter's account, as an operator's record), and each account's own
// choice on strangers, a keyval store that goes with the account.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import { millis, type Migration } from '../../src/storage/migrations.js';
import { KeyvalStore } from '../../src/storage/stores.js';

interface AntiSpamReportTable {
  host: string;
  id: string;
  created_at: number;
  reporter: string;
  reported: string;
  reason: string;
  text: string | null;
  /** JSON array of { id, by } (XEP-0359 stanza IDs of the reported messages). */
  stanza_ids: string;
}

interface AntiSpamTables {
  anti_spam_report: AntiSpamReportTable;
}

export const antiSpamMigrations: Migration[] = [
  {
    version: 1,
    name: 'reports',
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('anti_spam_report')
        .addColumn('host', 'varchar(1023)', (c) => c.notNull())
        .addColumn('id', 'varchar(32)', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addColumn('reporter', 'varchar(3071)', (c) => c.notNull())
        .addColumn('reported', 'varchar(3071)', (c) => c.notNull())
        .addColumn('reason', 'varchar(255)', (c) => c.notNull())
        .addColumn('text', 'text')
        .addColumn('stanza_ids', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('anti_spam_report_pk', ['host', 'id'])
        .execute();
      await db.schema.createIndex('anti_spam_report_time').on('anti_spam_report').columns(['host', 'created_at']).execute();
    },
  },
];

export interface StanzaRef {
  id: string;
  by: string;
}

export interface Report {
  id: string;
  createdAt: number;
  /** The reporting account's bare JID. */
  reporter: string;
  /** The JID blocked and reported, as the <item/> gave it (prepared). */
  reported: string;
  /** urn:xmpp:reporting:spam or urn:xmpp:reporting:abuse. */
  reason: string;
  text?: string;
  stanzaIds: StanzaRef[];
}

export class ReportStore {
  private readonly db: Kysely<AntiSpamTables>;

  private constructor(storage: Storage) {
    this.db = storage.tables<AntiSpamTables>() as unknown as Kysely<AntiSpamTables>;
  }

  /** The store, its table brought up to date (the CLI opens it without a running server). */
  static async open(storage: Storage): Promise<ReportStore> {
    await storage.migrate('anti_spam', antiSpamMigrations);
    return new ReportStore(storage);
  }

  /** Opens it where the migrations have run (the module's own). */
  static migrated(storage: Storage): ReportStore {
    return new ReportStore(storage);
  }

  async add(host: string, report: Omit<Report, 'id' | 'createdAt'>, now = Date.now()): Promise<Report> {
    const stored: Report = { ...report, id: `${now.toString(36)}-${randomBytes(6).toString('hex')}`, createdAt: now };
    await this.db
      .insertInto('anti_spam_report')
      .values({
        host,
        id: stored.id,
        created_at: now,
        reporter: report.reporter,
        reported: report.reported,
        reason: report.reason,
        text: report.text ?? null,
        stanza_ids: JSON.stringify(report.stanzaIds),
      })
      .execute();
    return stored;
  }

  /** The host's reports, newest first, at most `limit`. */
  async list(host: string, limit = 100): Promise<Report[]> {
    const rows = await this.db.selectFrom('anti_spam_report').selectAll().where('host', '=', host).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: r.id,
      createdAt: Number(r.created_at),
      reporter: r.reporter,
      reported: r.reported,
      reason: r.reason,
      ...(r.text === null ? {} : { text: r.text }),
      stanzaIds: JSON.parse(r.stanza_ids) as StanzaRef[],
    }));
  }
}

/** One line of a report, for the CLI, the ad-hoc command and the admins' notification. */
export function describeReport(r: Report): string {
  const reason = r.reason.replace(/^urn:xmpp:reporting:/, '');
  const parts = [`${new Date(r.createdAt).toISOString()} ${r.reporter} reported ${r.reported} for ${reason}`];
  if (r.text !== undefined) parts.push(`"${r.text}"`);
  if (r.stanzaIds.length > 0) parts.push(`messages: ${r.stanzaIds.map((s) => s.id).join(', ')}`);
  return parts.join(': ');
}

/** An account's own choice on strangers; none stored: the host's block_strangers. */
export type StrangersChoice = { block: boolean };

export const strangersChoice = (storage: Storage) => new KeyvalStore<StrangersChoice>(storage, 'anti_spam_strangers');
