// User Avatar to vCard-Based Avatars Conversion (XEP-0398): an XEP-0084 avatar becomes the
// vCard photo, a vCard photo becomes an XEP-0084 avatar (contacts with +notify are told), and
// the avatar's SHA-1 goes in the account's available presence unless the client set a <photo/>.
import t from 'tap';
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { xml } from '../helpers/clients.js';
import { connectWithCaps, eventFor, iq, items, itemsOf, ping, publish } from '../helpers/pubsub.js';
import { befriend } from './pep-helpers.js';

const MODULES = ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'vcard', 'pubsub', 'vcard_avatar'];
const DATA = 'urn:xmpp:avatar:data';
const METADATA = 'urn:xmpp:avatar:metadata';
const UPDATE = 'vcard-temp:x:update';
const ALICE = 'alice@localhost';
const PNG = Buffer.from('\x89PNG\r\n\x1a\n-first-avatar', 'latin1');
const JPEG = Buffer.from('\xff\xd8\xff-second-avatar', 'latin1');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

const photoHash = (presence: Element) => presence.getChild('x', UPDATE)?.getChild('photo')?.text();
const presenceOf = (from: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === undefined;

t.test('avatars convert both ways and their hash is in presence', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  for (const u of ['alice', 'bob']) await ts.addUser(u);
  const alice = await connectWithCaps(ts, 'alice', [], { resource: 'a' });
  const bob = await connectWithCaps(ts, 'bob', [`${METADATA}+notify`], { resource: 'b' });
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  for (const c of [alice, bob]) await iq(c, 'get', xml('query', { xmlns: 'jabber:iq:roster' }));
  await befriend(alice, bob);

  const info = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), ALICE);
  t.ok(
    info
      .getChild('query')!
      .getChildren('feature')
      .some((f) => f.attrs.var === 'urn:xmpp:pep-vcard-conversion:0'),
    'the account advertises the conversion',
  );

  await alice.send(xml('presence'));
  t.equal(photoHash(await bob.next(presenceOf(alice.jid))), '', 'no avatar yet: an empty <photo/> in presence');

  const id = sha1(PNG);
  await publish(alice, DATA, xml('data', { xmlns: DATA }, PNG.toString('base64')), { id });
  await publish(alice, METADATA, xml('metadata', { xmlns: METADATA }, xml('info', { id, bytes: String(PNG.length), type: 'image/png' })), { id });
  const vcard = await iq(bob, 'get', xml('vCard', { xmlns: 'vcard-temp' }), ALICE);
  const photo = vcard.getChild('vCard')!.getChild('PHOTO')!;
  t.equal(photo.getChildText('TYPE'), 'image/png', 'the XEP-0084 avatar is the vCard photo');
  t.same(Buffer.from(photo.getChildText('BINVAL')!, 'base64'), PNG, 'byte for byte');

  await alice.send(xml('presence', {}, xml('show', {}, 'away')));
  t.equal(photoHash(await bob.next((el) => presenceOf(alice.jid)(el) && el.getChildText('show') === 'away')), id, "its SHA-1 is stamped on alice's presence");
  await alice.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('x', { xmlns: UPDATE }, xml('photo'))));
  t.equal(photoHash(await bob.next((el) => presenceOf(alice.jid)(el) && el.getChildText('show') === 'dnd')), '', 'a <photo/> the client set is left alone');

  const jpegId = sha1(JPEG);
  const set = await iq(
    alice,
    'set',
    xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice'), xml('PHOTO', {}, xml('TYPE', {}, 'image/jpeg'), xml('BINVAL', {}, JPEG.toString('base64')))),
  );
  t.equal(set.attrs.type, 'result', 'a legacy client sets a vCard photo');
  const told = await bob.next((el) => eventFor(ALICE, METADATA)(el) && el.getChild('event')!.getChild('items')!.getChild('item')?.attrs.id === jpegId);
  t.match(
    told.getChild('event')!.getChild('items')!.getChild('item')!.getChild('metadata')!.getChild('info')!.attrs,
    { id: jpegId, bytes: String(JPEG.length), type: 'image/jpeg' },
    'contacts with +notify get the new metadata',
  );
  const data = itemsOf(await items(bob, ALICE, DATA));
  t.same(Buffer.from(data.at(-1)!.getChildText('data')!, 'base64'), JPEG, 'and can fetch the data from PEP');
  await ping(alice);
  const stored = await iq(alice, 'get', xml('vCard', { xmlns: 'vcard-temp' }));
  t.equal(stored.getChild('vCard')!.getChildText('FN'), 'Alice', 'the rest of the vCard is kept');
  t.equal(stored.getChild('vCard')!.getChildren('PHOTO').length, 1, 'with one photo');
});
