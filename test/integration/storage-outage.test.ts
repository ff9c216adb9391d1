// Storage down means an error, never a silent drop (the durability rule, DESIGN.md). With the
// connection to PostgreSQL cut (a proxy between the server and the database), a client with
// stream management sends to an offline contact: every message it gets acknowledged is either
// stored or answered with <resource-constraint type='wait'/>; once the database is reachable
// again the pool reconnects by itself. A message to an online contact whose archive write
// fails is still delivered, without a stanza-id, and the failure is counted.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { rawLogin, type RawStream } from '../helpers/clients.js';
import { POSTGRES_URL, postgresReachable, useService } from '../helpers/services.js';
import { dropSchema, uniqueSchema } from '../helpers/databases.js';
import { cuttableProxy, throughProxy, type CuttableProxy } from '../helpers/tcp-proxy.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';

const SM = 'urn:xmpp:sm:3';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'mam', 'blocking'];

const isError = (id: string) => (e: Element) => e.name === 'message' && e.attrs.type === 'error' && e.attrs.id === id;

/** Sends messages `ids` to `to`, then asks for an ack; resolves with h. */
async function send(s: RawStream, to: string, ids: string[]): Promise<number> {
  for (const id of ids) s.write(`<message to='${to}' type='chat' id='${id}'><body>${id}</body></message>`);
  s.write(`<r xmlns='${SM}'/>`);
  return Number((await s.element('a', 20_000)).attrs.h);
}

const range = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

async function serverThroughProxy(t: Test): Promise<{ ts: TestServer; proxy: CuttableProxy } | undefined> {
  if (!(await useService(t, 'PostgreSQL', postgresReachable, POSTGRES_URL))) return undefined;
  const u = new URL(POSTGRES_URL);
  const proxy = await cuttableProxy({ host: u.hostname, port: Number(u.port || 5432) });
  t.teardown(() => proxy.close());
  const schema = uniqueSchema('starling_outage');
  t.teardown(() => dropSchema(schema));
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    storage: { driver: 'postgres', postgres_url: throughProxy(POSTGRES_URL, proxy), postgres_schema: schema },
  });
  for (const user of ['alice', 'bob']) await ts.addUser(user);
  return { ts, proxy };
}

t.test('PostgreSQL cut: a message for an offline contact is stored or refused, never dropped; the pool reconnects', async (t) => {
  const setup = await serverThroughProxy(t);
  if (!setup) return;
  const { ts, proxy } = setup;
  const { s: alice } = await rawLogin(ts.port, 'alice', 'desk');
  t.teardown(() => alice.close());
  alice.write(`<enable xmlns='${SM}'/>`);
  await alice.element('enabled');

  t.equal(await send(alice, 'bob@localhost', range('m', 0, 5)), 5, 'stored while the database is there');

  proxy.cut();
  const during = range('m', 5, 15);
  t.equal(await send(alice, 'bob@localhost', during), 15, 'every message is handled (h) while it is gone...');
  for (const id of during) {
    const error = (await alice.until(() => alice.elements.find(isError(id)))).getChild('error')!;
    t.equal(error.attrs.type, 'wait', `${id}: an error of type wait`);
    t.ok(error.getChild('resource-constraint', STANZAS), `${id}: resource-constraint`);
    t.match(error.getChildText('text', STANZAS), /storage is unavailable/, `${id}: with a text`);
  }
  const counters = ts.server.core.counters;
  t.equal(counters.get('routing_storage_failures_total') + counters.get('offline_store_failures_total'), during.length, '...each answered with an error, and counted');

  proxy.restore();
  t.equal(await send(alice, 'bob@localhost', range('m', 15, 20)), 20, 'stored again once it is back');
  const stored = await new ArchiveStore(ts.server.core.storage, 'offline').page('localhost', 'bob', { max: 100, countLimit: 0 });
  const ids = stored.items.map((m) => /id='(m\d+)'|id="(m\d+)"/.exec(m.stanza)!.slice(1).find(Boolean));
  t.same(ids, [...range('m', 0, 5), ...range('m', 15, 20)], 'the pool reconnected by itself: the messages after the outage are stored');
  const errors = alice.elements.filter((e) => e.name === 'message' && e.attrs.type === 'error').map((e) => e.attrs.id);
  t.same(errors, during, 'and no other error came');
});

t.test('PostgreSQL cut: a message to an online contact is delivered without a stanza-id; the archive failure is counted', async (t) => {
  const setup = await serverThroughProxy(t);
  if (!setup) return;
  const { ts, proxy } = setup;
  const { s: bob } = await rawLogin(ts.port, 'bob', 'phone');
  t.teardown(() => bob.close());
  bob.write('<presence/>');
  const { s: alice } = await rawLogin(ts.port, 'alice', 'desk');
  t.teardown(() => alice.close());
  alice.write(`<enable xmlns='${SM}'/>`);
  await alice.element('enabled');
  const received = (id: string) => bob.until(() => bob.elements.find((e) => e.name === 'message' && e.attrs.id === id));
  const stanzaId = (e: Element) => e.getChild('stanza-id', 'urn:xmpp:sid:0');

  t.equal(await send(alice, 'bob@localhost', ['before']), 1);
  t.ok(stanzaId(await received('before')), 'archived: stamped with a stanza-id');

  proxy.cut();
  const counters = ts.server.core.counters;
  t.equal(await send(alice, 'bob@localhost', ['o1', 'o2', 'o3']), 4);
  for (const id of ['o1', 'o2', 'o3']) t.notOk(stanzaId(await received(id)), `${id}: delivered, without a stanza-id`);
  t.ok(counters.get('archive_write_failures_total') >= 3, `the failed archive writes are counted (${counters.get('archive_write_failures_total')})`);
  t.equal(alice.elements.filter((e) => e.name === 'message' && e.attrs.type === 'error').length, 0, 'delivered: no error to the sender');

  proxy.restore();
  t.equal(await send(alice, 'bob@localhost', ['after']), 5);
  t.ok(stanzaId(await received('after')), 'archived again once the database is back');
});
