// Persistent rooms (XEP-0045 §10.1.2 muc#roomconfig_persistentroom) in the database: the
// configuration, subject and occupant-id salt of each, its affiliations, and its discussion
// history (the last messages, at most the room's history length: each new row trims the oldest
// by sequence number, so a room's rows never grow past it). Rooms belong to the
// service, not to an account: no foreign key to account (an owner's account going does not take
// the room with it). Affiliation rows go with their room (ON DELETE CASCADE). Temporary rooms
// are never written.
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Database } from '../../src/storage/schema.js';
import { millis, type Migration } from '../../src/storage/migrations.js';

export interface MucRoomTable {
  /** The service's domain (conference.example.org). */
  service: string;
  /** The room's localpart (prepared). */
  room: string;
  /** The RoomConfig as JSON. */
  config: string;
  subject: string;
  /** The occupant JID of whoever set the subject, or null: the room. */
  subject_by: string | null;
  /** Salt of the XEP-0421 occupant ids, so they stay the same across restarts. */
  salt: string;
  created_at: number;
}

export interface MucAffiliationTable {
  service: string;
  room: string;
  /** A bare JID, or a domain. */
  jid: string;
  /** owner, admin, member or outcast ('none' is no row). */
  affiliation: string;
  /** A reserved nickname. */
  nick: string | null;
  reason: string | null;
}

export interface MucHistoryTable {
  service: string;
  room: string;
  /** The message's place in the room's history (counting up; trimming drops the lowest). */
  seq: number;
  /** The XEP-0359 id the room gave it (a moderated retraction removes by it). */
  stanza_id: string;
  /** When the room received it (the <delay/> stamp). */
  at: number;
  /** Characters of the stanza as sent (maxchars counts these). */
  chars: number;
  /** The message as the room broadcast it, without 'to'. */
  stanza: string;
}

export interface MucTables {
  muc_room: MucRoomTable;
  muc_affiliation: MucAffiliationTable;
  muc_history: MucHistoryTable;
}

/**
 * CREATE TABLE for rows a persistent room owns: its service and room columns, and the foreign
 * key that deletes the rows with the room. Add the table's own columns and keys to the builder.
 */
function createRoomTable(db: Kysely<any>, name: string) {
  return db.schema
    .createTable(name)
    .addColumn('service', 'varchar(1023)', (c) => c.notNull())
    .addColumn('room', 'varchar(1023)', (c) => c.notNull())
    .addForeignKeyConstraint(`${name}_room_fk`, ['service', 'room'], 'muc_room', ['service', 'room'], (fk) => fk.onDelete('cascade'));
}

export const mucMigrations: Migration[] = [
  {
    version: 1,
    name: 'muc_rooms',
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('muc_room')
        .addColumn('service', 'varchar(1023)', (c) => c.notNull())
        .addColumn('room', 'varchar(1023)', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('subject_by', 'varchar(3071)')
        .addColumn('salt', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', millis, (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_room_pk', ['service', 'room'])
        .execute();
      await createRoomTable(db, 'muc_affiliation')
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('affiliation', 'varchar(16)', (c) => c.notNull())
        .addColumn('nick', 'varchar(1023)')
        .addColumn('reason', 'text')
        .addPrimaryKeyConstraint('muc_affiliation_pk', ['service', 'room', 'jid'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'muc_history',
    async up(db: Kysely<any>) {
      await createRoomTable(db, 'muc_history')
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('stanza_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('at', millis, (c) => c.notNull())
        .addColumn('chars', 'integer', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_history_pk', ['service', 'room', 'seq'])
        .execute();
    },
  },
];

export interface StoredAffiliation {
  jid: string;
  affiliation: 'owner' | 'admin' | 'member' | 'outcast';
  nick?: string;
  reason?: string;
}

/** A message of a room's discussion history. */
export interface StoredMessage {
  seq: number;
  stanzaId: string;
  at: number;
  chars: number;
  /** The serialised message, without 'to'. */
  stanza: string;
}

export interface StoredRoom {
  room: string;
  config: string;
  subject: string;
  subjectBy?: string;
  salt: string;
  createdAt: number;
  affiliations: StoredAffiliation[];
  /** Its discussion history, oldest first. */
  history: StoredMessage[];
}

export class MucStore {
  private readonly db: Kysely<Database & MucTables>;

  constructor(storage: Storage) {
    this.db = storage.tables<MucTables>();
  }

  /** Every persistent room of a service (or only `only`, when given), with its affiliations and history. */
  async rooms(service: string, only?: string): Promise<StoredRoom[]> {
    let rowQuery = this.db.selectFrom('muc_room').selectAll().where('service', '=', service);
    let affiliationQuery = this.db.selectFrom('muc_affiliation').selectAll().where('service', '=', service);
    let messageQuery = this.db.selectFrom('muc_history').selectAll().where('service', '=', service);
    if (only !== undefined) {
      rowQuery = rowQuery.where('room', '=', only);
      affiliationQuery = affiliationQuery.where('room', '=', only);
      messageQuery = messageQuery.where('room', '=', only);
    }
    const rows = await rowQuery.execute();
    const affiliations = await affiliationQuery.execute();
    const byRoom = new Map<string, StoredAffiliation[]>();
    for (const a of affiliations) {
      const list = byRoom.get(a.room) ?? [];
      list.push({ jid: a.jid, affiliation: a.affiliation as StoredAffiliation['affiliation'], nick: a.nick ?? undefined, reason: a.reason ?? undefined });
      byRoom.set(a.room, list);
    }
    const messages = await messageQuery.orderBy('room').orderBy('seq').execute();
    const historyOf = new Map<string, StoredMessage[]>();
    for (const m of messages) {
      const list = historyOf.get(m.room) ?? [];
      list.push({ seq: Number(m.seq), stanzaId: m.stanza_id, at: Number(m.at), chars: Number(m.chars), stanza: m.stanza });
      historyOf.set(m.room, list);
    }
    return rows.map((r) => ({
      room: r.room,
      config: r.config,
      subject: r.subject,
      subjectBy: r.subject_by ?? undefined,
      salt: r.salt,
      createdAt: Number(r.created_at),
      affiliations: byRoom.get(r.room) ?? [],
      history: historyOf.get(r.room) ?? [],
    }));
  }

  /** The name and configuration (JSON) of every persistent room of a service: for disco#items. */
  async listing(service: string): Promise<{ room: string; config: string }[]> {
    return this.db.selectFrom('muc_room').select(['room', 'config']).where('service', '=', service).execute();
  }

  /** Writes a whole room (it became persistent, or was configured): row, affiliations and history, in one transaction. */
  async save(service: string, room: StoredRoom): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const values = {
        service,
        room: room.room,
        config: room.config,
        subject: room.subject,
        subject_by: room.subjectBy ?? null,
        salt: room.salt,
        created_at: room.createdAt,
      };
      await trx
        .insertInto('muc_room')
        .values(values)
        .onConflict((oc) => oc.columns(['service', 'room']).doUpdateSet({ config: values.config, subject: values.subject, subject_by: values.subject_by }))
        .execute();
      await trx.deleteFrom('muc_affiliation').where('service', '=', service).where('room', '=', room.room).execute();
      if (room.affiliations.length > 0) {
        await trx
          .insertInto('muc_affiliation')
          .values(room.affiliations.map((a) => ({ service, room: room.room, jid: a.jid, affiliation: a.affiliation, nick: a.nick ?? null, reason: a.reason ?? null })))
          .execute();
      }
      await trx.deleteFrom('muc_history').where('service', '=', service).where('room', '=', room.room).execute();
      if (room.history.length > 0) {
        await trx
          .insertInto('muc_history')
          .values(room.history.map((m) => historyRow(service, room.room, m)))
          .execute();
      }
    });
  }

  /** Adds a message to a persistent room's history and drops what is older than its last `keep`. */
  async addMessage(service: string, room: string, message: StoredMessage, keep: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('muc_history')
        .values(historyRow(service, room, message))
        .execute();
      await trx
        .deleteFrom('muc_history')
        .where('service', '=', service)
        .where('room', '=', room)
        .where('seq', '<=', message.seq - keep)
        .execute();
    });
  }

  /** Removes a message from a persistent room's history (a moderated retraction). */
  async removeMessage(service: string, room: string, stanzaId: string): Promise<void> {
    await this.db.deleteFrom('muc_history').where('service', '=', service).where('room', '=', room).where('stanza_id', '=', stanzaId).execute();
  }

  /** The configuration and subject of a persistent room. */
  async saveState(service: string, room: string, state: { config: string; subject: string; subjectBy?: string }): Promise<void> {
    await this.db
      .updateTable('muc_room')
      .set({ config: state.config, subject: state.subject, subject_by: state.subjectBy ?? null })
      .where('service', '=', service)
      .where('room', '=', room)
      .execute();
  }

  /** Sets one affiliation of a persistent room; undefined removes it (affiliation none). */
  async setAffiliation(service: string, room: string, jid: string, entry: Omit<StoredAffiliation, 'jid'> | undefined): Promise<void> {
    if (!entry) {
      await this.db.deleteFrom('muc_affiliation').where('service', '=', service).where('room', '=', room).where('jid', '=', jid).execute();
      return;
    }
    const values = { service, room, jid, affiliation: entry.affiliation, nick: entry.nick ?? null, reason: entry.reason ?? null };
    await this.db
      .insertInto('muc_affiliation')
      .values(values)
      .onConflict((oc) => oc.columns(['service', 'room', 'jid']).doUpdateSet({ affiliation: values.affiliation, nick: values.nick, reason: values.reason }))
      .execute();
  }

  /** Removes a room and (cascade) its affiliations and history. */
  async remove(service: string, room: string): Promise<void> {
    await this.db.deleteFrom('muc_history').where('service', '=', service).where('room', '=', room).execute();
    await this.db.deleteFrom('muc_affiliation').where('service', '=', service).where('room', '=', room).execute();
    await this.db.deleteFrom('muc_room').where('service', '=', service).where('room', '=', room).execute();
  }
}

function historyRow(service: string, room: string, m: StoredMessage): MucHistoryTable {
  return { service, room, seq: m.seq, stanza_id: m.stanzaId, at: m.at, chars: m.chars, stanza: m.stanza };
}
