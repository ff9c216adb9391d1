// Calls pass through: XEP-0353 Jingle message initiation reaches every resource of the callee,
// is carbon-copied (XEP-0280) to the caller's and callee's other resources and archived
// (XEP-0313); XEP-0167 session-initiate / session-accept IQs (with an XEP-0176 ICE-UDP
// transport) travel between full JIDs untouched, to the one resource addressed.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { DOMAIN, startTestServer } from '../helpers/harness.js';
import { forwarded, mamQuery } from '../helpers/mam.js';

const JMI = 'urn:xmpp:jingle-message:0';
const JINGLE = 'urn:xmpp:jingle:1';
const RTP = 'urn:xmpp:jingle:apps:rtp:1';
const ICE = 'urn:xmpp:jingle:transports:ice-udp:1';
const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'carbons', 'mam'];

let ids = 0;
async function iq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `j${++ids}`;
  await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

/** The JMI element named `name` for call `sid` in a message, or in the carbon of `kind` it carries. */
const jmi = (name: string, sid: string, kind?: 'sent' | 'received') => (el: Element) => {
  if (el.name !== 'message') return false;
  const inner = kind ? el.getChild(kind, CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message') : el;
  return inner?.getChild(name, JMI)?.attrs.id === sid;
};

const content = () =>
  xml(
    'content',
    { creator: 'initiator', name: 'voice' },
    xml('description', { xmlns: RTP, media: 'audio' }, xml('payload-type', { id: '111', name: 'opus', clockrate: '48000', channels: '2' })),
    xml(
      'transport',
      { xmlns: ICE, ufrag: 'aUfr', pwd: 'aPasswordOfEnoughLength1' },
      xml('candidate', {
        component: '1',
        foundation: '1',
        generation: '0',
        id: 'c1',
        ip: '192.0.2.1',
        network: '0',
        port: '40000',
        priority: '2130706431',
        protocol: 'udp',
        type: 'host',
      }),
    ),
  );

t.test('Jingle calls pass through', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const aLaptop = await connect(ts, 'alice', { resource: 'laptop' });
  const aPhone = await connect(ts, 'alice', { resource: 'phone' });
  const bLaptop = await connect(ts, 'bob', { resource: 'laptop' });
  const bPhone = await connect(ts, 'bob', { resource: 'phone' });
  const all = [aLaptop, aPhone, bLaptop, bPhone];
  t.teardown(() => Promise.all(all.map((c) => c.stop())));
  for (const c of all) t.equal((await iq(c, 'set', xml('enable', { xmlns: CARBONS }))).attrs.type, 'result', `carbons on for ${c.jid}`);
  const alice = `alice@${DOMAIN}`;
  const bob = `bob@${DOMAIN}`;

  t.test('XEP-0353 propose: every resource of the callee rings, the caller’s other devices see it, both archives keep it', async (t) => {
    await aLaptop.send(
      xml(
        'message',
        { type: 'chat', to: bob, id: 'p1' },
        xml('propose', { xmlns: JMI, id: 'call1' }, xml('description', { xmlns: RTP, media: 'audio' })),
        xml('store', { xmlns: 'urn:xmpp:hints' }),
      ),
    );
    for (const c of [bLaptop, bPhone]) {
      const got = await c.next(jmi('propose', 'call1'));
      t.equal(got.attrs.from, aLaptop.jid, `${c.jid} got the propose from the caller's full JID`);
      t.equal(got.getChild('propose', JMI)!.getChild('description', RTP)?.attrs.media, 'audio');
    }
    const copy = await aPhone.next(jmi('propose', 'call1', 'sent'));
    t.equal(copy.attrs.from, alice, 'a <sent/> carbon on the caller’s other device');
    t.ok(await nothingArrived(aLaptop, jmi('propose', 'call1', 'sent'), aLaptop), 'no copy to the sending device');

    const caller = await mamQuery(aLaptop, { with: bob });
    t.ok(
      caller.results.some((r) => forwarded(r).getChild('propose', JMI)?.attrs.id === 'call1'),
      'in the caller’s archive',
    );
    const callee = await mamQuery(bPhone, { with: alice });
    t.ok(
      callee.results.some((r) => forwarded(r).getChild('propose', JMI)?.attrs.id === 'call1'),
      'in the callee’s archive',
    );
  });

  t.test('XEP-0353 proceed from one callee device: the callee’s other devices stop ringing', async (t) => {
    // Sent as type normal, as older clients do: still copied.
    await bPhone.send(xml('message', { to: aLaptop.jid, id: 'p2' }, xml('proceed', { xmlns: JMI, id: 'call1' })));
    const got = await aLaptop.next(jmi('proceed', 'call1'));
    t.equal(got.attrs.from, bPhone.jid);
    const copy = await bLaptop.next(jmi('proceed', 'call1', 'sent'));
    t.equal(copy.attrs.from, bob, 'a <sent/> carbon on the callee’s other device');
    await aPhone.next(jmi('proceed', 'call1', 'received'));
    t.pass('a <received/> carbon on the caller’s other device');
  });

  t.test('XEP-0167 session-initiate and session-accept between full JIDs', async (t) => {
    const initiate = xml('jingle', { xmlns: JINGLE, action: 'session-initiate', initiator: aLaptop.jid, sid: 'call1' }, content());
    const sent = aLaptop.send(xml('iq', { type: 'set', id: 'si1', to: bPhone.jid }, initiate));
    const atCallee = await bPhone.next((el) => el.name === 'iq' && el.attrs.id === 'si1');
    await sent;
    t.equal(atCallee.attrs.type, 'set');
    t.equal(atCallee.attrs.from, aLaptop.jid, 'from the caller’s full JID');
    t.equal(atCallee.attrs.to, bPhone.jid);
    const jingle = atCallee.getChild('jingle', JINGLE)!;
    t.equal(jingle.attrs.action, 'session-initiate');
    t.equal(jingle.getChild('content')!.getChild('transport', ICE)!.getChild('candidate')!.attrs.ip, '192.0.2.1', 'the ICE candidate is unchanged');
    await bPhone.send(xml('iq', { type: 'result', id: 'si1', to: aLaptop.jid }));
    const ack = await aLaptop.next((el) => el.name === 'iq' && el.attrs.id === 'si1');
    t.equal(ack.attrs.type, 'result');
    t.equal(ack.attrs.from, bPhone.jid);

    const accept = xml('jingle', { xmlns: JINGLE, action: 'session-accept', initiator: aLaptop.jid, responder: bPhone.jid, sid: 'call1' }, content());
    await bPhone.send(xml('iq', { type: 'set', id: 'sa1', to: aLaptop.jid }, accept));
    const atCaller = await aLaptop.next((el) => el.name === 'iq' && el.attrs.id === 'sa1');
    t.equal(atCaller.attrs.from, bPhone.jid);
    t.equal(atCaller.getChild('jingle', JINGLE)?.attrs.action, 'session-accept');
    await aLaptop.send(xml('iq', { type: 'result', id: 'sa1', to: bPhone.jid }));
    t.equal((await bPhone.next((el) => el.name === 'iq' && el.attrs.id === 'sa1')).attrs.type, 'result');

    const jingleIq = (el: Element) => el.name === 'iq' && el.getChild('jingle', JINGLE) !== undefined;
    t.ok(await nothingArrived(bLaptop, jingleIq, aLaptop, bPhone), 'the callee’s other device saw no Jingle IQ');
    t.ok(await nothingArrived(aPhone, jingleIq, aLaptop, bPhone), 'nor the caller’s');
  });
});
