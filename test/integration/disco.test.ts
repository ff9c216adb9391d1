// XEP-0030 service discovery (the server, its items, accounts' bare JIDs), XEP-0157 contact
// addresses, and XEP-0115 entity capabilities: the server's own caps in its stream features,
// and the caps cache the server keeps of its clients.
import { createHash } from 'node:crypto';
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN } from '../helpers/harness.js';
import { connect, RawStream, xml, type TestClient } from '../helpers/clients.js';
import { capsVer, readDiscoInfo } from '../../modules/caps/verification.js';
import { CapsKey } from '../../modules/caps/service.js';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';
const CAPS = 'http://jabber.org/protocol/caps';
const DATA = 'jabber:x:data';

const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

/**
 * The XEP-0115 §5.1 verification string, written here apart from the server's code so that a
 * test cannot pass on a bug both share: sorting by UTF-8 octets, forms by FORM_TYPE, fields by var.
 */
function testVer(query: Element): string {
  const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const identities = query
    .getChildren('identity')
    .map((i) => [i.attrs.category ?? '', i.attrs.type ?? '', i.attrs['xml:lang'] ?? '', i.attrs.name ?? ''])
    .sort((a, b) => cmp(a[0]!, b[0]!) || cmp(a[1]!, b[1]!) || cmp(a[2]!, b[2]!) || cmp(a[3]!, b[3]!));
  let s = identities.map((i) => `${i.join('/')}<`).join('');
  s += query
    .getChildren('feature')
    .map((f) => f.attrs.var!)
    .sort(cmp)
    .map((f) => `${f}<`)
    .join('');
  const forms = query
    .getChildren('x', DATA)
    .map((x) => ({
      x,
      type: x
        .getChildren('field')
        .find((f) => f.attrs.var === 'FORM_TYPE')!
        .getChildText('value')!,
    }))
    .sort((a, b) => cmp(a.type, b.type));
  for (const { x, type } of forms) {
    s += `${type}<`;
    const fields = x
      .getChildren('field')
      .filter((f) => f.attrs.var !== 'FORM_TYPE')
      .sort((a, b) => cmp(a.attrs.var!, b.attrs.var!));
    for (const f of fields)
      s +=
        `${f.attrs.var}<` +
        f
          .getChildren('value')
          .map((v) => v.getText())
          .sort(cmp)
          .map((v) => `${v}<`)
          .join('');
  }
  return createHash('sha1').update(s, 'utf8').digest('base64');
}

async function get(c: TestClient, to: string | undefined, payload: Element): Promise<Element> {
  const id = `g${Math.random().toString(36).slice(2)}`;
  await c.send(xml('iq', { type: 'get', id, to }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

t.test('the verification string matches the examples of XEP-0115 §5.2 and §5.3', async (t) => {
  const simple = xml(
    'query',
    { xmlns: INFO },
    xml('identity', { category: 'client', type: 'pc', name: 'Exodus 0.9.1' }),
    ...['http://jabber.org/protocol/caps', INFO, ITEMS, 'http://jabber.org/protocol/muc'].map((v) => xml('feature', { var: v })),
  );
  t.equal(capsVer(readDiscoInfo(simple).info, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  t.equal(testVer(simple), 'QgayPKawpkPSDYmwT/WM94uAlu0=', "and so does the test's own");
  const complex = xml(
    'query',
    { xmlns: INFO },
    xml('identity', { 'xml:lang': 'en', category: 'client', name: 'Psi 0.11', type: 'pc' }),
    xml('identity', { 'xml:lang': 'el', category: 'client', name: 'Ψ 0.11', type: 'pc' }),
    ...['http://jabber.org/protocol/caps', INFO, ITEMS, 'http://jabber.org/protocol/muc'].map((v) => xml('feature', { var: v })),
    xml(
      'x',
      { xmlns: DATA, type: 'result' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:xmpp:dataforms:softwareinfo')),
      xml('field', { var: 'ip_version' }, xml('value', {}, 'ipv4'), xml('value', {}, 'ipv6')),
      xml('field', { var: 'os' }, xml('value', {}, 'Mac')),
      xml('field', { var: 'os_version' }, xml('value', {}, '10.5.1')),
      xml('field', { var: 'software' }, xml('value', {}, 'Psi')),
      xml('field', { var: 'software_version' }, xml('value', {}, '0.11')),
    ),
  );
  t.equal(capsVer(readDiscoInfo(complex).info, 'sha-1'), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  t.equal(testVer(complex), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  const twice = xml('query', { xmlns: INFO }, xml('identity', { category: 'client', type: 'pc' }), xml('feature', { var: INFO }), xml('feature', { var: INFO }));
  t.notOk(readDiscoInfo(twice).wellFormed, 'a repeated feature makes the answer ill-formed (§5.4)');
});

t.test('discovery and caps', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence'],
    modules: {
      disco: { contact_info: { admin: ['xmpp:admin@localhost', 'mailto:admin@example.org'], abuse: ['mailto:abuse@example.org'] } },
    },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  clients.push(alice, bob);
  const caps = () => ts.server.core.hosts.get(DOMAIN)!.service(CapsKey)!;

  t.test('disco#info of the server has the contact addresses (XEP-0157)', async (t) => {
    const info = await get(alice, DOMAIN, xml('query', { xmlns: INFO }));
    const query = info.getChild('query', INFO)!;
    t.ok(query.getChildren('identity').some((i) => i.attrs.category === 'server' && i.attrs.type === 'im'));
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    t.ok(features.includes(CAPS), 'caps advertised');
    const form = query.getChild('x', DATA)!;
    t.equal(form.attrs.type, 'result');
    const fields = Object.fromEntries(form.getChildren('field').map((f) => [f.attrs.var, f.getChildren('value').map((v) => v.getText())]));
    t.same(fields, {
      FORM_TYPE: ['http://jabber.org/network/serverinfo'],
      'abuse-addresses': ['mailto:abuse@example.org'],
      'admin-addresses': ['xmpp:admin@localhost', 'mailto:admin@example.org'],
    });
    t.equal(form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE')!.attrs.type, 'hidden');
  });

  t.test('disco#items of the server lists service items', async (t) => {
    const empty = await get(alice, DOMAIN, xml('query', { xmlns: ITEMS }));
    t.same(empty.getChild('query', ITEMS)!.getChildren('item'), [], 'none yet');
    // What ctx.discoItem() records for a module serving a domain of its own.
    const items = ts.server.core.hosts.get(DOMAIN)!.discoItems;
    const item = { jid: `upload.${DOMAIN}`, name: 'File upload' };
    items.push(item);
    t.teardown(() => void items.splice(items.indexOf(item), 1));
    const listed = await get(alice, DOMAIN, xml('query', { xmlns: ITEMS }));
    t.same(
      listed
        .getChild('query', ITEMS)!
        .getChildren('item')
        .map((i) => i.attrs),
      [{ jid: `upload.${DOMAIN}`, name: 'File upload' }],
    );
    t.equal(errorCondition(await get(alice, DOMAIN, xml('query', { xmlns: ITEMS, node: 'nope' }))), 'item-not-found');
  });

  t.test("disco#info of an account's bare JID", async (t) => {
    for (const to of ['alice@localhost', undefined]) {
      const info = await get(alice, to, xml('query', { xmlns: INFO }));
      t.equal(info.attrs.type, 'result', `to ${to ?? 'nobody'}: answered by the server for the account`);
      const query = info.getChild('query', INFO)!;
      t.same(
        query.getChildren('identity').map((i) => i.attrs),
        [{ category: 'account', type: 'registered' }],
      );
      t.ok(query.getChildren('feature').some((f) => f.attrs.var === INFO));
      t.notOk(
        query.getChildren('feature').some((f) => f.attrs.var === CAPS),
        "the server's own features are not the account's",
      );
    }
    const items = await get(alice, 'alice@localhost', xml('query', { xmlns: ITEMS }));
    t.same(items.getChild('query', ITEMS)!.getChildren('item'), [], 'disco#items of the account: empty');
    t.equal(errorCondition(await get(bob, 'alice@localhost', xml('query', { xmlns: INFO }))), 'service-unavailable', 'not to a stranger (XEP-0030 §8)');
    t.equal(errorCondition(await get(alice, 'nobody@localhost', xml('query', { xmlns: INFO }))), 'service-unavailable', 'an unknown account looks the same');
    // bob subscribes to alice's presence; alice approves: now bob may discover alice's account.
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await alice.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await bob.next((el) => el.name === 'presence' && el.attrs.type === 'subscribed');
    const allowed = await get(bob, 'alice@localhost', xml('query', { xmlns: INFO }));
    t.equal(allowed.attrs.type, 'result', 'a contact with a presence subscription may');
  });

  t.test("the server's caps in the stream features, recomputed", async (t) => {
    const s = await RawStream.open(ts.port);
    s.header();
    const plain = await s.element('stream:features');
    t.notOk(plain.getChild('c', CAPS), 'nothing but STARTTLS before TLS');
    await s.startTls();
    s.header();
    const c = (await s.element('stream:features')).getChild('c', CAPS)!;
    s.close();
    t.equal(c.attrs.hash, 'sha-1');
    t.equal(c.attrs.node, 'https://starling.example/');
    const info = await get(alice, DOMAIN, xml('query', { xmlns: INFO }));
    t.equal(c.attrs.ver, testVer(info.getChild('query', INFO)!), 'ver is the hash of what disco#info answers');
    const atNode = await get(alice, DOMAIN, xml('query', { xmlns: INFO, node: `${c.attrs.node}#${c.attrs.ver}` }));
    t.equal(atNode.attrs.type, 'result', 'the caps node#ver is answered');
    t.equal(atNode.getChild('query', INFO)!.attrs.node, `${c.attrs.node}#${c.attrs.ver}`, 'with the node mirrored');
    t.equal(testVer(atNode.getChild('query', INFO)!), c.attrs.ver);
    t.equal(caps().serverVer(), c.attrs.ver);
  });

  t.test("the server learns clients' caps", async (t) => {
    const NODE = 'https://client.example/caps';
    const answer = (features: string[]) =>
      xml('query', { xmlns: INFO }, xml('identity', { category: 'client', type: 'pc', name: 'Test 1.0' }), ...features.map((v) => xml('feature', { var: v })));
    const features = [INFO, CAPS, 'urn:example:feature', 'urn:xmpp:example+notify'];
    const ver = testVer(answer(features));
    /** A client that answers disco#info with `features` and counts the questions. */
    const client = async (user: string, announced: string, answered = features) => {
      const c = await connect(ts, user, { presence: false });
      clients.push(c);
      const asked: string[] = [];
      c.xmpp.iqCallee.get(INFO, 'query', (ctx: { stanza: Element; element: Element }) => {
        t.equal(ctx.stanza.attrs.from, DOMAIN, 'the server asks');
        asked.push(ctx.element.attrs.node ?? '');
        return answer(answered);
      });
      await c.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node: NODE, ver: announced })));
      return { c, asked };
    };
    const until = async <T>(check: () => T | undefined) => {
      for (let i = 0; i < 100; i++) {
        const v = check();
        if (v !== undefined) return v;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('timed out');
    };

    const carol = await client('carol', ver);
    const known = await until(() => caps().featuresOf(carol.c.jid));
    t.same(carol.asked, [`${NODE}#${ver}`], 'asked once, at node#ver');
    t.same([...known].sort(), [...features].sort(), 'the features the client answered');
    t.ok(caps().hasFeature(carol.c.jid, 'urn:xmpp:example+notify'), 'what PEP will ask');
    t.equal(caps().featuresOf('carol@localhost/elsewhere'), undefined, 'unknown for another resource');

    const dave = await client('dave', ver);
    await until(() => caps().featuresOf(dave.c.jid));
    t.same(dave.asked, [], 'the same ver again: answered from the cache, no question');

    // A client whose answer does not match its ver: kept for itself, never cached for others.
    const bogus = 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=';
    const erin = await client('erin', bogus);
    await until(() => caps().featuresOf(erin.c.jid));
    t.same(erin.asked, [`${NODE}#${bogus}`]);
    const alice2 = await client('alice', bogus, [INFO, 'urn:example:other']);
    await until(() => caps().featuresOf(alice2.c.jid));
    t.same(alice2.asked, [`${NODE}#${bogus}`], 'an unverified ver is asked again');
    t.same([...caps().featuresOf(alice2.c.jid)!].sort(), [INFO, 'urn:example:other'].sort());

    await carol.c.send(xml('presence', { type: 'unavailable' }));
    await until(() => (caps().featuresOf(carol.c.jid) === undefined ? true : undefined));
    t.pass('forgotten when the client goes unavailable');
  });
});
