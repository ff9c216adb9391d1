// Persistent rooms (XEP-0045 §10.1.2 muc#roomconfig_persistentroom) in the database: the
// configuration, subject and occupant-id salt of each, and its affiliations. Rooms belong to the
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

export interface MucTables {
  muc_room: MucRoomTable;
  muc_affiliation: MucAffiliationTable;
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
      await db.schema
        .createTable('muc_affiliation')
        .addColumn('service', 'varchar(1023)', (c) => c.notNull())
        .addColumn('room', 'varchar(1023)', (c) => c.notNull())
        .addColumn('jid', 'varchar(3071)', (c) => c.notNull())
        .addColumn('affiliation', 'varchar(16)', (c) => c.notNull())
        .addColumn('nick', 'varchar(1023)')
        .addColumn('reason', 'text')
        .addPrimaryKeyConstraint('muc_affiliation_pk', ['service', 'room', 'jid'])
        .addForeignKeyConstraint('muc_affiliation_room_fk', ['service', 'room'], 'muc_room', ['service', 'room'], (fk) => fk.onDelete('cascade'))
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

export interface StoredRoom {
  room: string;
  config: string;
  subject: string;
  subjectBy?: string;
  salt: string;
  createdAt: number;
  affiliations: StoredAffiliation[];
}

export class MucStore {
  private readonly db: Kysely<Database & MucTables>;

  constructor(private readonly storage: Storage) {
    this.db = storage.tables<MucTables>();
  }

  async migrate(): Promise<string[]> {
    return this.storage.migrate('muc', mucMigrations);
  }

  /** Every persistent room of a service, with its affiliations. */
  async rooms(service: string): Promise<StoredRoom[]> {
    const rows = await this.db.selectFrom('muc_room').selectAll().where('service', '=', service).execute();
    const affiliations = await this.db.selectFrom('muc_affiliation').selectAll().where('service', '=', service).execute();
    const byRoom = new Map<string, StoredAffiliation[]>();
    for (const a of affiliations) {
      const list = byRoom.get(a.room) ?? [];
      list.push({ jid: a.jid, affiliation: a.affiliation as StoredAffiliation['affiliation'], nick: a.nick ?? undefined, reason: a.reason ?? undefined });
      byRoom.set(a.room, list);
    }
    return rows.map((r) => ({
      room: r.room,
      config: r.config,
      subject: r.subject,
      subjectBy: r.subject_by ?? undefined,
      salt: r.salt,
      createdAt: Number(r.created_at),
      affiliations: byRoom.get(r.room) ?? [],
    }));
  }

  /** Writes a whole room (it became persistent, or was created so): row and affiliations, in one transaction. */
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
    });
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

  /** Removes a room and (cascade) its affiliations. */
  async remove(service: string, room: string): Promise<void> {
    await this.db.deleteFrom('muc_affiliation').where('service', '=', service).where('room', '=', room).execute();
    await this.db.deleteFrom('muc_room').where('service', '=', service).where('room', '=', room).execute();
  }
}
