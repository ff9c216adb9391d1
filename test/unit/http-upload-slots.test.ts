// Upload slot tokens (only the slot they were given for verifies, until it expires) and file
// name sanitising.
import t from 'tap';
import { SlotSigner, newSlotId, sanitiseFilename, SLOT_ID } from '../../modules/http-upload/slots.js';

t.test('a slot token verifies for its slot only, until it expires', async (t) => {
  const signer = new SlotSigner('secret', 'upload.example');
  const id = newSlotId();
  t.match(id, SLOT_ID);
  const now = Date.now();
  const slot = { id, owner: 'alice@example', size: 42, type: 'image/png', expires: Math.floor(now / 1000) + 60 };
  const token = signer.sign(slot, 'a.png');
  t.same(signer.verify(token, id, 'a.png', now), slot, 'verifies');
  t.equal(signer.verify(token, id, 'a.png', now + 61_000), 'expired', 'past its lifetime');
  t.equal(signer.verify(token, newSlotId(), 'a.png', now), 'invalid', 'another slot');
  t.equal(signer.verify(token, id, 'b.png', now), 'invalid', 'another name');
  t.equal(new SlotSigner('other', 'upload.example').verify(token, id, 'a.png', now), 'invalid', 'another secret');
  t.equal(new SlotSigner('secret', 'upload.other').verify(token, id, 'a.png', now), 'invalid', 'another service');
  const [payload, mac] = token.split('.');
  const forged = Buffer.from(JSON.stringify({ o: 'alice@example', n: 1_000_000, t: 'image/png', e: slot.expires })).toString('base64url');
  t.equal(signer.verify(`${forged}.${mac}`, id, 'a.png', now), 'invalid', 'a changed size');
  t.equal(signer.verify(payload!, id, 'a.png', now), 'invalid', 'no signature');
  t.equal(signer.verify('', id, 'a.png', now), 'invalid', 'nothing');
});

t.test('file names', async (t) => {
  t.equal(sanitiseFilename('photo.jpg'), 'photo.jpg');
  t.equal(sanitiseFilename('../../etc/passwd'), 'passwd');
  t.equal(sanitiseFilename('C:\\Users\\x\\doc.pdf'), 'doc.pdf');
  t.equal(sanitiseFilename('a"b<c>\u0000d.txt'), 'a_b_c__d.txt');
  t.equal(sanitiseFilename('..'), '');
  t.equal(sanitiseFilename('dir/'), '');
  t.equal(sanitiseFilename('   '), '');
  t.equal([...sanitiseFilename('é'.repeat(500))].length, 200);
});
