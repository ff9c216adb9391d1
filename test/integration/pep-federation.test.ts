// PEP with a contact on another server (XEP-0163 §4.3): two Starlings (a.localhost and
// b.localhost) linked by static routes. bob on b announces `+notify` for the OMEMO device list
// in his entity capabilities; a learns them from the presence that reaches alice (asking bob's
// client over the server-to-server stream), sends him alice's last published device list, and
// then each new one; a resource of bob's without `+notify` gets none.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { nothingArrived } from '../helpers/clients.js';
import { announceCaps, EVENT, publish } from '../helpers/pubsub.js';
import { befriend } from './pep-helpers.js';
import { connectTo, FEDERATION_MODULES, link, startFederated, xml } from './s2s-helpers.js';

const DEVICELIST = 'eu.siacs.conversations.axolotl.devicelist';
const PEP_MODULES = [...FEDERATION_MODULES, 'caps', 'pubsub'];
const devices = (...ids: string[]) => xml('list', { xmlns: 'eu.siacs.conversations.axolotl' }, ...ids.map((id) => xml('device', { id })));
const deviceIdsIn = (el: Element) =>
  el
    .getChild('event', EVENT)
    ?.getChild('items')
    ?.getChild('item')
    ?.getChild('list')
    ?.getChildren('device')
    .map((d) => d.attrs.id);
const devicelistEvent = (from: string) => (el: Element) =>
  el.name === 'message' && el.attrs.from === from && el.getChild('event', EVENT)?.getChild('items')?.attrs.node === DEVICELIST;

t.test('a remote contact with +notify gets the last item when it comes online, then every publish', async (t) => {
  const a = await startFederated(t, 'a.localhost', {}, { modules_enabled: PEP_MODULES, modules: { pubsub: { service: '' } } });
  const b = await startFederated(t, 'b.localhost', {}, { modules_enabled: PEP_MODULES, modules: { pubsub: { service: '' } } });
  link(a, b);
  await a.user('alice');
  await b.user('bob');
  const alice = await connectTo(a, 'alice', 'desk');
  const bob = await connectTo(b, 'bob', 'phone');
  const bobTablet = await connectTo(b, 'bob', 'tablet');
  t.teardown(() => Promise.all([alice.stop(), bob.stop(), bobTablet.stop()]));
  for (const c of [alice, bob]) await c.iq('get', undefined, xml('query', { xmlns: 'jabber:iq:roster' }));
  await befriend(alice, bob);

  const first = await publish(alice, DEVICELIST, devices('1001'), { id: 'current' });
  t.equal(first.attrs.type, 'result', 'alice publishes her device list');

  await announceCaps(bob, [`${DEVICELIST}+notify`]);
  const last = await bob.next(devicelistEvent('alice@a.localhost'));
  t.same(deviceIdsIn(last), ['1001'], "a learnt bob's caps from b and sent him alice's last device list");
  t.equal(last.attrs.to, bob.jid, "to bob's resource that asked for it");

  await publish(alice, DEVICELIST, devices('1001', '2002'), { id: 'current' });
  const next = await bob.next(devicelistEvent('alice@a.localhost'));
  t.same(deviceIdsIn(next), ['1001', '2002'], 'a new device list reaches bob on the other server');
  t.ok(await nothingArrived(bobTablet, devicelistEvent('alice@a.localhost'), alice), 'his resource without +notify gets none');
});
