// The two shapes of a chatroom bookmark: XEP-0048's <conference/> inside <storage
// xmlns="storage:bookmarks"/> (kept in private XML storage), and XEP-0402's PEP item with the
// room's JID as id and a <conference xmlns="urn:xmpp:bookmarks:1"/> payload.
import { xml, type Element } from '@xmpp/xml';
import { tryParseJid } from '../../src/jid.js';
import { cloneElement } from '../../src/xml/clone.js';
import type { PepItem } from '../pubsub/pep-api.js';

export const NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1';
export const NS_LEGACY = 'storage:bookmarks';

const truthy = (value: string | undefined) => value === 'true' || value === '1';

/** The legacy <conference/>s of a <storage/> as Bookmarks 2 items (entries without a valid room JID are left out). */
export function itemsFromStorage(storage: Element): PepItem[] {
  const items = new Map<string, PepItem>();
  for (const conference of storage.getChildren('conference')) {
    const room = tryParseJid(conference.attrs.jid ?? '');
    if (!room || room.resource !== '' || room.local === '') continue;
    const payload = xml('conference', { xmlns: NS_BOOKMARKS2, autojoin: truthy(conference.attrs.autojoin) ? 'true' : 'false' });
    if (conference.attrs.name) payload.attrs.name = conference.attrs.name;
    for (const child of ['nick', 'password']) {
      const text = conference.getChildText(child);
      if (text) payload.append(xml(child, {}, text));
    }
    items.set(room.toString(), { id: room.toString(), payload });
  }
  return [...items.values()];
}

/** Bookmarks 2 items as a legacy <storage/>. */
export function storageFromItems(items: PepItem[]): Element {
  const storage = xml('storage', { xmlns: NS_LEGACY });
  for (const { id, payload } of items) {
    if (payload.name !== 'conference' || payload.attrs.xmlns !== NS_BOOKMARKS2) continue;
    const conference = xml('conference', { jid: id, autojoin: truthy(payload.attrs.autojoin) ? 'true' : 'false' });
    if (payload.attrs.name) conference.attrs.name = payload.attrs.name;
    for (const child of ['nick', 'password']) {
      const text = payload.getChildText(child);
      if (text) conference.append(xml(child, {}, text));
    }
    storage.append(conference);
  }
  return storage;
}

/** A converted item keeps what a Bookmarks 2 client stored beside it (<extensions/>) when the bookmark was there before. */
export function keepExtensions(item: PepItem, previous: PepItem | undefined): PepItem {
  const extensions = previous?.payload.getChild('extensions');
  if (!extensions) return item;
  const payload = cloneElement(item.payload);
  payload.append(cloneElement(extensions));
  return { id: item.id, payload };
}
