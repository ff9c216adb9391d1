// The store kinds (src/storage/stores.ts): keyval, map and archive, on SQLite and PostgreSQL.
// Paging and counting of archives are in archive-store.test.ts; this file covers the rest of the
// archive kind (group commit, queues, updates, service archives) and the cascade on account
// deletion for every kind.
import t from 'tap';
import { AccountStore } from '../../src/storage/accounts.js';
import { idAt } from '../../src/storage/archive/ids.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';
import { KeyvalStore, MapStore, text } from '../../src/storage/stores.js';
import { storeOnBothDatabases } from '../helpers/databases.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';

const H = 'x.example';
const item = (body: string, withBare = 'bob@y.example') => ({ withBare, withResource: '', direction: 'in' as const, stanza: `<message><body>${body}</body></message>` });

storeOnBothDatabases(t, 'kinds', async (t, storage) => {
  const accounts = new AccountStore(storage.db);
  for (const u of ['ann', 'ben', 'cat']) await accounts.create(H, u, []);

  t.test('keyval: one value per account and store', async (t) => {
    const kv = new KeyvalStore<{ at: number; status: string }>(storage, 'last');
    const other = new KeyvalStore<string>(storage, 'vcard', text);
    t.equal(await kv.get(H, 'ann'), undefined);
    await kv.set(H, 'ann', { at: 1, status: 'away' });
    await kv.set(H, 'ann', { at: 2, status: '' });
    await other.set(H, 'ann', '<vCard xmlns="vcard-temp"/>');
    t.same(await kv.get(H, 'ann'), { at: 2, status: '' }, 'replaced');
    t.equal(await other.get(H, 'ann'), '<vCard xmlns="vcard-temp"/>', 'text as it is, in a store of its own');
    t.equal(await kv.get(H, 'ben'), undefined, 'per account');
    t.ok(await kv.delete(H, 'ann'));
    t.notOk(await kv.delete(H, 'ann'), 'gone already');
    t.equal(await kv.get(H, 'ann'), undefined);
    await t.rejects(kv.set(H, 'nobody', { at: 1, status: '' }), 'values need an account');
  });

  t.test('map: keyed values per account', async (t) => {
    const map = new MapStore<boolean>(storage, 'blocking');
    const long = `${'l'.repeat(1023)}@${'d'.repeat(1023)}/${'r'.repeat(1000)}`;
    await map.set(H, 'ben', 'b@y.example', true);
    await map.set(H, 'ben', 'a@y.example', true);
    await map.set(H, 'ben', long, true);
    t.equal(await map.get(H, 'ben', 'a@y.example'), true);
    t.equal(await map.get(H, 'ben', 'c@y.example'), undefined);
    t.same([...(await map.all(H, 'ben')).keys()], ['a@y.example', 'b@y.example', long], 'in key order; a key holds a full JID of any length');
    t.ok(await map.delete(H, 'ben', long));
    t.same(await map.all(H, 'cat'), new Map(), 'per account');

    const result = await map.update(H, 'ben', (entries) => {
      entries.delete('a@y.example');
      entries.set('c@y.example', true);
      return entries.size;
    });
    t.equal(result, 2, 'update returns what its change returns');
    t.same([...(await map.all(H, 'ben')).keys()], ['b@y.example', 'c@y.example'], 'and writes what it changed');
    // Concurrent updates of one account are serialized: a limit holds.
    const adds = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        map.update(H, 'cat', (entries) => {
          if (entries.size >= 2) return false;
          entries.set(`j${n}@y.example`, true);
          return true;
        }),
      ),
    );
    t.equal(adds.filter(Boolean).length, 2, 'two of four fit');
    t.equal((await map.all(H, 'cat')).size, 2);
    t.equal(await map.deleteAll(H, 'cat'), 2);
    await t.rejects(
      map.update(H, 'nobody', (e) => e.set('k', true)),
      'values need an account',
    );
  });

  t.test('archive: group commit, each write resolving once committed, a bad one failing alone', async (t) => {
    const archive = new ArchiveStore(storage, 'test');
    const writes = Array.from({ length: 50 }, (_, i) => archive.append(H, i % 2 ? 'ann' : 'ben', item(`m${i}`)));
    const bad = archive.append(H, 'nobody', item('lost'));
    const late = archive.append(H, 'ann', item('late'));
    const ids = await Promise.all(writes);
    await t.rejects(bad, 'the row of a missing account is refused');
    await late;
    t.same([...ids].sort(), ids, 'ids in the order of the writes');
    const page = await archive.page(H, 'ann', { max: 100, countLimit: 100 });
    t.equal(page.count, 26, 'all of ann’s writes, the one queued after the bad one too');
    t.same(
      page.items.map((m) => m.id),
      [...ids.filter((_, i) => i % 2), await late],
    );
    t.equal(await archive.count(H, 'ben'), 25);
    t.equal(await new ArchiveStore(storage, 'other').count(H, 'ann'), 0, 'stores are apart');
  });

  t.test('archive: update, limits, consuming a queue', async (t) => {
    const queue = new ArchiveStore(storage, 'queue');
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => queue.appendWithin(H, 'cat', item(`q${i}`), 4)));
    t.equal(results.filter((r) => r === 'full').length, 2, 'a full queue refuses the rest');
    const id = results[0]!;
    t.ok(await queue.update(H, 'cat', id, (m) => m.stanza.replace('q0', 'changed')));
    t.notOk(await queue.update(H, 'cat', 'nope', () => 'x'), 'no such id');
    t.match((await queue.get(H, 'cat', id))!.stanza, /changed/);
    const take = (n: number) => (items: { stanza: string }[]) => Math.min(n, items.length);
    const [a, b] = await Promise.all([queue.consume(H, 'cat', take(3)), queue.consume(H, 'cat', take(3))]);
    t.equal(a + b, 4, 'two consumers at once never get the same items');
    t.equal(await queue.consume(H, 'cat', () => t.fail('not called for an empty queue') as never), 0);
  });

  t.test('archive: items taken back by id, and items at their original time', async (t) => {
    const queue = new ArchiveStore(storage, 'takeback');
    const early = Date.now() - 60_000;
    const late = await queue.append(H, 'cat', item('late'));
    const old = await queue.append(H, 'cat', { ...item('early'), id: idAt(early) });
    t.equal((await queue.get(H, 'cat', old))!.ts, early, 'the id carries the original time');
    t.same(
      (await queue.page(H, 'cat', { max: 10, countLimit: 0 })).items.map((m) => m.id),
      [old, late],
      'in time order',
    );
    t.same([...(await queue.removeItems(H, 'cat', [old, 'not-an-id', idAt(early)]))], [old], 'only what was there');
    t.same([...(await queue.removeItems(H, 'cat', [old]))], [], 'once');
    t.equal(await queue.count(H, 'cat'), 1);
  });

  t.test('archive: service archives are nobody’s account', async (t) => {
    const rooms = new ArchiveStore(storage, 'muc', 'service');
    await rooms.append('rooms.x.example', 'lobby', { ...item('hi', 'ann@x.example'), withResource: 'Ann' });
    await rooms.append('rooms.x.example', 'attic', item('hello'));
    t.same((await rooms.archives('rooms.x.example')).sort(), ['attic', 'lobby']);
    t.equal((await rooms.page('rooms.x.example', 'lobby', { with: { resource: 'Ann' }, max: 10, countLimit: 10 })).count, 1);
    t.equal(await rooms.removeArchive('rooms.x.example', 'attic'), 1);
    t.same(await rooms.archives('rooms.x.example'), ['lobby']);
  });

  t.test('deleting an account deletes its rows of every kind', async (t) => {
    await new KeyvalStore(storage, 'k').set(H, 'ann', 1);
    await new MapStore(storage, 'm').set(H, 'ann', 'key', 1);
    const before = await rowsOwnedBy(storage, H, 'ann');
    t.ok(before.user_data! > 0 && before.archive! > 0);
    t.ok(await accounts.delete(H, 'ann'));
    const after = await rowsOwnedBy(storage, H, 'ann');
    t.same(
      Object.values(after).filter((n) => n > 0),
      [],
      'nothing left',
    );
  });
});
