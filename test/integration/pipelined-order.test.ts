// A session's stanzas go on before the ones ahead of them are committed (Router.routeInOrder:
// the next one starts once the one before has its place in the recipient's archive queue), so
// the messages of one socket read share a group commit. Their order must survive it (RFC 6120
// §10.1): a burst written in one go, alternately to an online contact and to an offline one,
// reaches the first in order, each stamped, and the second's offline store in order; the
// sender's stream-management acknowledgement comes once all of it is committed. On SQLite and
// on PostgreSQL (a pool of connections: each message's writes and reads may finish in any order).
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { DOMAIN, startTestServer } from '../helpers/harness.js';
import { rawLogin } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';

const SM = 'urn:xmpp:sm:3';
const NS_SID = 'urn:xmpp:sid:0';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'mam', 'carbons', 'blocking'];
const N = 300;

const ids = (prefix: string, parity: number) => Array.from({ length: N }, (_, i) => `${prefix}${i}`).filter((_, i) => i % 2 === parity);

async function burst(t: Test, overrides: Record<string, unknown> = {}): Promise<void> {
  const ts = await startTestServer(t, { modules_enabled: MODULES, ...overrides });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const { s: alice } = await rawLogin(ts.port, 'alice', 'a');
  const { s: bob } = await rawLogin(ts.port, 'bob', 'b');
  t.teardown(() => {
    alice.close();
    bob.close();
  });
  alice.write(`<enable xmlns='${SM}'/>`);
  await alice.element('enabled');
  bob.write('<presence/>');
  await bob.until(() => bob.elements.some((e) => e.name === 'presence'));

  // One write: the server reads the whole burst at once and routes it as one pipeline.
  let stanzas = '';
  for (let i = 0; i < N; i++) {
    const to = i % 2 === 0 ? 'bob@localhost/b' : 'carol@localhost';
    stanzas += `<message to='${to}' type='chat' id='m${i}'><body>m${i}</body></message>`;
  }
  alice.write(stanzas + `<r xmlns='${SM}'/>`);
  t.equal((await alice.element('a', 20_000)).attrs.h, String(N), 'all acknowledged');

  const toBob = ids('m', 0);
  const live = () => bob.elements.filter((e) => e.name === 'message' && e.attrs.type === 'chat');
  await bob.until(() => live().length >= toBob.length, 20_000);
  t.same(
    live().map((m) => m.attrs.id),
    toBob,
    'the online contact gets them once each, in order',
  );
  const stamps = live().map((m) => m.getChild('stanza-id', NS_SID)?.attrs.id ?? '');
  t.ok(
    stamps.every((id, i) => id !== '' && (i === 0 || id > stamps[i - 1]!)),
    'each with a stanza-id, in increasing order',
  );

  // Acknowledged, so committed: carol's offline store and both archives hold them in order.
  const offline = await new ArchiveStore(ts.server.core.storage, 'offline').page(DOMAIN, 'carol', { max: N, countLimit: 0 });
  t.same(offline.items.map(idOf), ids('m', 1), 'the offline contact has them stored in order');
  const archive = await new ArchiveStore(ts.server.core.storage, 'mam').page(DOMAIN, 'alice', { max: N, countLimit: 0 });
  t.same(
    archive.items.map(idOf),
    Array.from({ length: N }, (_, i) => `m${i}`),
    "the sender's archive has every one, in order",
  );

  const { s: carol } = await rawLogin(ts.port, 'carol', 'c');
  t.teardown(() => carol.close());
  carol.write('<presence/>');
  const stored = () => carol.elements.filter((e: Element) => e.name === 'message' && e.attrs.type === 'chat');
  await carol.until(() => stored().length >= N / 2, 20_000);
  t.same(
    stored().map((m) => m.attrs.id),
    ids('m', 1),
    'and gets them in order when she comes online',
  );
}

function idOf(item: { stanza: string }): string | undefined {
  return /id=['"](m\d+)['"]/.exec(item.stanza)?.[1];
}

t.test('a burst in one write, on SQLite: in order everywhere', (t) => burst(t));

t.test('a burst in one write, on PostgreSQL: in order everywhere', (t) => onPostgres(t, 'starling_order', (overrides) => burst(t, overrides)));
