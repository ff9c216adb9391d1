// User Avatar to vCard-Based Avatars Conversion (XEP-0398): an avatar published with XEP-0084
// (PEP nodes urn:xmpp:avatar:data and :metadata) becomes the account's vCard photo, and a vCard
// photo is published as an XEP-0084 avatar, so clients of either kind see it (MUC occupants
// only through vCards). Each direction stops when the other already holds the same image (by
// SHA-1), so a change converts once. The SHA-1 is stamped on every available presence the
// account's clients send (vcard-temp:x:update), unless the client put a <photo/> there itself.
import { xml } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { preEvents } from '../../src/module-api/events.js';
import { defineModule } from '../../src/module-api/define.js';
import { Priority } from '../../src/module-api/priorities.js';
import { PepKey } from '../pubsub/pep-api.js';
import { VcardKey } from '../vcard/service.js';
import { photoOf, sha1, withPhoto } from './photo.js';
import { ALL } from '../../src/module-api/invalidation.js';

const NS_DATA = 'urn:xmpp:avatar:data';
const NS_METADATA = 'urn:xmpp:avatar:metadata';
const NS_UPDATE = 'vcard-temp:x:update';
export const NS_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';

export default defineModule({
  name: 'vcard_avatar',
  depends: ['vcard', 'pubsub'],
  setup(ctx) {
    const pep = ctx.use(PepKey);
    const vcards = ctx.use(VcardKey);
    /** Each account's avatar SHA-1 as its vCard has it ('' for none), once read. */
    const hashes = new Map<string, string>();
    const hashOf = async (account: Jid) => {
      let hash = hashes.get(account.toString());
      if (hash === undefined) {
        const photo = photoOf(await vcards.get(account));
        hash = photo ? sha1(photo.bytes) : '';
        hashes.set(account.toString(), hash);
      }
      return hash;
    };
    ctx.accountFeature(NS_CONVERSION);

    // PEP -> vCard (§3.1): the image of the info element that is not an external URL.
    ctx.onUnload(
      pep.onPublish(NS_METADATA, async (account, item) => {
        const infos = item.payload.getChildren('info');
        if (infos.length === 0) {
          // Avatar publishing disabled (XEP-0084 §4.2): no photo either.
          const vcard = await vcards.get(account);
          if (photoOf(vcard)) await vcards.set(account, withPhoto(vcard, undefined));
          return;
        }
        const info = infos.find((i) => !i.attrs.url && i.attrs.id);
        if (!info || (await hashOf(account)) === info.attrs.id) return;
        const data = (await pep.items(account, NS_DATA))?.find((i) => i.id === info.attrs.id);
        if (!data) return;
        const bytes = Buffer.from(data.payload.text().replace(/\s+/g, ''), 'base64');
        if (sha1(bytes) !== info.attrs.id) {
          ctx.log.info({ jid: account.toString() }, 'avatar data does not match its SHA-1 id; not copied to the vCard');
          return;
        }
        await vcards.set(account, withPhoto(await vcards.get(account), { type: info.attrs.type || 'image/png', bytes }));
      }),
    );

    // vCard -> PEP (§3.2): data first, then metadata naming it.
    ctx.onUnload(
      vcards.onChange(async (account, vcard) => {
        const photo = photoOf(vcard);
        const hash = photo ? sha1(photo.bytes) : '';
        hashes.set(account.toString(), hash);
        await ctx.invalidation.publish('vcard-avatar', account.toString());
        if (!photo) return;
        const current = (await pep.items(account, NS_METADATA))?.at(-1)?.payload.getChild('info')?.attrs.id;
        if (current === hash) return;
        await pep.publish(account, NS_DATA, { id: hash, payload: xml('data', { xmlns: NS_DATA }, photo.bytes.toString('base64')) }, {});
        const info = xml('info', { id: hash, bytes: String(photo.bytes.length), type: photo.type });
        await pep.publish(account, NS_METADATA, { id: hash, payload: xml('metadata', { xmlns: NS_METADATA }, info) }, {});
      }),
    );

    // §4: the hash in every available presence (directed ones too, such as MUC joins).
    for (const event of preEvents('presence')) {
      ctx.hook(
        event,
        async ({ stanza, origin }) => {
          if (stanza.attrs.type !== undefined || !origin.jid) return;
          const update = stanza.getChild('x', NS_UPDATE);
          if (update?.getChild('photo')) return;
          const hash = await hashOf(origin.jid.bare);
          if (update) stanza.children = stanza.children.filter((c) => c !== update);
          stanza.append(xml('x', { xmlns: NS_UPDATE }, xml('photo', {}, ...(hash ? [hash] : []))));
        },
        Priority.STAMP,
      );
    }
    // A vCard changed on another cluster node: its hash is read again at the next use.
    ctx.invalidation.on('vcard-avatar', (key) => (key === ALL ? hashes.clear() : void hashes.delete(key)));
    ctx.hook('account/deleted', ({ jid }) => void hashes.delete(jid.toString()));
  },
});
