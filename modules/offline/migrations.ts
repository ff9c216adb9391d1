// Offline messages moved from a table of their own (offline_message, ordered by seq) into the
// archive store kind ('offline'): each row gets an archive id of the time it was stored, in
// seq order, so the queue keeps its order and its delay stamps.
import { IdGenerator, idTime } from '../../src/storage/archive/ids.js';
import { movedToStores } from '../../src/storage/migrations.js';

export const offlineMigrations = movedToStores(['offline_message'], async (db) => {
  const rows = await db.selectFrom('offline_message').selectAll().orderBy('host').orderBy('username').orderBy('seq').execute();
  let at = 0;
  const ids = new IdGenerator(() => at);
  for (const r of rows) {
    at = Number(r.created_at);
    const id = ids.next();
    await db
      .insertInto('archive')
      .values({ host: r.host, username: r.username, store: 'offline', id, ts: idTime(id)!, with_bare: '', with_resource: '', direction: 'in', stanza: r.stanza })
      .execute();
  }
});
