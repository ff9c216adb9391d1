// XEP-0215 External Service Discovery over real sockets: the services list (all, by type),
// TURN credentials in coturn's TURN REST API scheme, the credentials request (§3.3), who is
// answered (only the host's own authenticated users), and silence while nothing is configured.
// conformance/coturn/credentials.test.ts checks the credentials against a real coturn.
import { createHmac } from 'node:crypto';
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, errorCondition, PASSWORD, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { DOMAIN, startTestServer } from '../helpers/harness.js';
import { makeJid } from '../../src/jid.js';

const NS = 'urn:xmpp:extdisco:2';
const SECRET = 'shared with coturn';
const OTHER = 'other.localhost';
const MODULES = ['sasl', 'ping', 'disco', 'external_services'];
const SERVICES = [
  { type: 'stun', host: 'turn.example.org', port: 3478 },
  { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp' },
  { type: 'turns', host: 'turn.example.org', port: 5349, transport: 'tcp', name: 'TLS relay' },
];

async function iq(client: TestClient, payload: Element, to = DOMAIN): Promise<Element> {
  const id = `q${Math.random().toString(36).slice(2)}`;
  await client.send(xml('iq', { type: 'get', id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const features = async (client: TestClient) =>
  (await iq(client, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })))
    .getChild('query')!
    .getChildren('feature')
    .map((f) => f.attrs.var as string);

t.test('external services configured', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    hosts: { [DOMAIN]: {}, [OTHER]: {} },
    modules: { external_services: { secret: SECRET, ttl: 600, services: SERVICES } },
  });
  await ts.addUser('alice');
  await ts.server.core.accounts.create(makeJid('mallory', OTHER), PASSWORD);
  const alice = await connect(ts, 'alice', { resource: 'phone' });
  t.teardown(() => alice.stop());

  t.test('the feature is advertised', async (t) => {
    t.ok((await features(alice)).includes(NS));
  });

  t.test('all services, TURN ones with working credentials', async (t) => {
    const before = Math.floor(Date.now() / 1000);
    const reply = await iq(alice, xml('services', { xmlns: NS }));
    t.equal(reply.attrs.type, 'result');
    const services = reply.getChild('services', NS)!.getChildren('service');
    t.same(
      services.map((s) => [s.attrs.type, s.attrs.host, s.attrs.port, s.attrs.transport]),
      [
        ['stun', 'turn.example.org', '3478', undefined],
        ['turn', 'turn.example.org', '3478', 'udp'],
        ['turns', 'turn.example.org', '5349', 'tcp'],
      ],
    );
    const [stun, turn, turns] = services;
    t.equal(stun.attrs.username, undefined, 'STUN gets no credentials');
    t.equal(stun.attrs.restricted, undefined);
    t.equal(turns.attrs.name, 'TLS relay');
    for (const s of [turn, turns]) {
      const [expiry, local] = String(s.attrs.username).split(':');
      t.equal(local, 'alice');
      t.ok(Number(expiry) >= before + 600 && Number(expiry) <= Math.ceil(Date.now() / 1000) + 600, 'expiry = now + ttl');
      t.equal(s.attrs.password, createHmac('sha1', SECRET).update(String(s.attrs.username)).digest('base64'));
      t.equal(s.attrs.expires, new Date(Number(expiry) * 1000).toISOString().replace('.000Z', 'Z'), 'expires is the XEP-0082 DateTime of the expiry');
      t.equal(s.attrs.restricted, 'true');
    }
  });

  t.test('services of one type', async (t) => {
    const reply = await iq(alice, xml('services', { xmlns: NS, type: 'turn' }));
    const services = reply.getChild('services', NS)!;
    t.equal(services.attrs.type, 'turn');
    t.same(
      services.getChildren('service').map((s) => s.attrs.type),
      ['turn'],
    );
  });

  t.test('credentials for one service (§3.3)', async (t) => {
    const reply = await iq(alice, xml('credentials', { xmlns: NS }, xml('service', { type: 'turns', host: 'turn.example.org' })));
    t.equal(reply.attrs.type, 'result');
    const service = reply.getChild('credentials', NS)!.getChild('service')!;
    t.equal(service.attrs.type, 'turns');
    t.equal(service.attrs.port, '5349');
    t.match(service.attrs.username, /^\d+:alice$/);
    t.equal(service.attrs.password, createHmac('sha1', SECRET).update(String(service.attrs.username)).digest('base64'));
    t.ok(service.attrs.expires);
  });

  t.test('credentials for an unknown service or one without credentials: item-not-found', async (t) => {
    for (const service of [xml('service', { type: 'turn', host: 'elsewhere.example' }), xml('service', { type: 'stun', host: 'turn.example.org' })]) {
      const reply = await iq(alice, xml('credentials', { xmlns: NS }, service));
      t.equal(reply.attrs.type, 'error');
      t.equal(errorCondition(reply), 'item-not-found');
    }
    const bad = await iq(alice, xml('credentials', { xmlns: NS }));
    t.equal(errorCondition(bad), 'bad-request');
  });

  t.test('a user of another host served here gets forbidden', async (t) => {
    const mallory = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: OTHER, username: 'mallory', password: PASSWORD, resource: 'x' }));
    t.teardown(() => mallory.stop());
    for (const payload of [xml('services', { xmlns: NS }), xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: 'turn.example.org' }))]) {
      const reply = await iq(mallory, payload);
      t.equal(reply.attrs.type, 'error', payload.name);
      t.equal(errorCondition(reply), 'forbidden', payload.name);
    }
  });
});

t.test('no services configured: silent', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  await ts.addUser('alice');
  const alice = await connect(ts, 'alice');
  t.teardown(() => alice.stop());
  t.notOk((await features(alice)).includes(NS), 'no feature in disco#info');
  const reply = await iq(alice, xml('services', { xmlns: NS }));
  t.equal(reply.attrs.type, 'result');
  t.equal(reply.getChild('services', NS)!.children.length, 0, 'an empty list');
  const creds = await iq(alice, xml('credentials', { xmlns: NS }, xml('service', { type: 'turn', host: 'turn.example.org' })));
  t.equal(errorCondition(creds), 'item-not-found');
});
