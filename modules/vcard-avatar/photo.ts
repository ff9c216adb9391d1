// The avatar inside a vCard (XEP-0153: <PHOTO><TYPE/><BINVAL/></PHOTO>) and its SHA-1, as
// XEP-0084 names avatars by it.
import { createHash } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { cloneElement } from '../../src/xml/clone.js';

export interface Photo {
  type: string;
  bytes: Buffer;
}

export const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest('hex');

/** The vCard's photo when it carries image data (not an external URI). */
export function photoOf(vcard: Element | undefined): Photo | undefined {
  const photo = vcard?.getChild('PHOTO');
  const binval = photo?.getChildText('BINVAL');
  if (!photo || !binval) return undefined;
  const bytes = Buffer.from(binval.replace(/\s+/g, ''), 'base64');
  if (bytes.length === 0) return undefined;
  return { type: photo.getChildText('TYPE') || 'image/png', bytes };
}

/** `vcard` (or a new one) with its photo replaced by `photo`, or removed. */
export function withPhoto(vcard: Element | undefined, photo: Photo | undefined): Element {
  const next = vcard ? cloneElement(vcard) : xml('vCard', { xmlns: 'vcard-temp' });
  next.children = next.children.filter((c) => typeof c === 'string' || c.name !== 'PHOTO');
  if (photo) next.append(xml('PHOTO', {}, xml('TYPE', {}, photo.type), xml('BINVAL', {}, photo.bytes.toString('base64'))));
  return next;
}
