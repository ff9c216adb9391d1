// The room archives (XEP-0313 on a MUC room's bare JID) in the database: `muc_archive`, an
// archive table like the user archives' (modules/mam/store.ts createArchiveTable: the same
// columns, primary key and index, and the same store and keyset paging), with owner columns of
// its own: (service, room), the MUC service's domain and the room's localpart. Rooms are not
// accounts: no foreign key to account, and no host/username columns that would make the rows
// look like an account's. A room's rows go with the room (destroyed, or a temporary room
// emptied), not with anyone's account.
//
// What the columns hold for a room message:
//   with_bare      the sender's real bare JID (shown only to those who may see real JIDs);
//   with_resource  the sender's nickname at the time (the resource of the 'from', room@service/nick);
//   direction      always 'in' (messages the room received and broadcast);
//   stanza         the message as the room broadcast it (no 'to', no muc#user <x/>).
// One index more than the user archives: (service, room, with_resource, ts, id), for 'with' an
// occupant JID (room@service/nick: the messages of that nick, in order).
import type { Kysely } from 'kysely';
import type { Storage } from '../../src/storage/database.js';
import type { Migration } from '../../src/storage/migrations.js';
import { createArchiveTable, type ArchiveTableNames } from '../mam/store.js';

export const ROOM_ARCHIVE: ArchiveTableNames = { table: 'muc_archive', owner: ['service', 'room'] };

export function roomArchiveMigrations(driver: Storage['driver']): Migration[] {
  return [
    {
      version: 1,
      name: 'muc_archive',
      async up(db: Kysely<any>) {
        await createArchiveTable(db, ROOM_ARCHIVE, driver, false);
        await db.schema
          .createIndex('muc_archive_nick_idx')
          .on('muc_archive')
          .columns(['service', 'room', 'with_resource', 'ts', 'id'])
          .execute();
      },
    },
  ];
}

/** Creates or updates the room archive table; returns the migrations it applied. */
export function migrateRoomArchive(storage: Storage): Promise<string[]> {
  return storage.migrate('muc_mam', roomArchiveMigrations(storage.driver));
}
