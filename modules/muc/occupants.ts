// Occupants of a room (XEP-0045 §7): one per nickname, with one or more client sessions of
// the same user behind it, its role, its last presence, and its XEP-0421 occupant id.
import { createHash } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { Recipient } from './fanout.js';
import type { TokenBucket } from './flood.js';
import { MUC } from './ns.js';
import type { Affiliation, Role } from './permissions.js';

export class Occupant {
  /** The sessions in the room under this nickname, by real full JID. */
  readonly sessions = new Map<string, Recipient>();
  /** The occupant's presence as the room broadcasts it: the client's children, cleaned. */
  presence: Element[] = [];
  /** The 'type' of that presence (undefined = available). */
  show: string | undefined;
  /** Its groupchat message allowance (flood.ts), from its first message on. */
  bucket: TokenBucket | undefined;

  constructor(
    /** room@service/nick */
    public jid: Jid,
    /** The user's real bare JID. */
    readonly bare: Jid,
    public role: Role,
    /** XEP-0421: stable for this user in this room. */
    readonly occupantId: string,
  ) {}

  get nick(): string {
    return this.jid.resource;
  }

  /** The real full JID shown to those who may see it: the most recent session's. */
  get realJid(): string {
    let last: string | undefined;
    for (const key of this.sessions.keys()) last = key;
    return last ?? this.bare.toString();
  }
}

/** XEP-0421 §4: an id per user and room that tells nothing of the real JID. */
export function occupantId(salt: string, bare: Jid): string {
  return createHash('sha256').update(salt).update('\0').update(bare.toString()).digest('base64url');
}

/** What a client may not put in the presence or message it sends to a room (the room adds its own). */
export function isRoomOwned(child: Element): boolean {
  const ns = child.attrs.xmlns;
  if (child.name === 'x' && (ns === MUC.USER || ns === MUC.BASE)) return true;
  if (child.name === 'occupant-id' && ns === MUC.OCCUPANT_ID) return true;
  return false;
}

/** The element children of a client's stanza, without what the room alone may add. */
export function cleanChildren(stanza: Element, extra?: (child: Element) => boolean): Element[] {
  const out: Element[] = [];
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (isRoomOwned(c) || extra?.(c)) continue;
    out.push(c);
  }
  return out;
}

export interface ItemDetails {
  affiliation: Affiliation;
  role: Role;
  /** The real JID, for those who may see it. */
  jid?: string;
  /** The new nickname (303). */
  nick?: string;
  actor?: string;
  reason?: string;
}

/** The <x xmlns='muc#user'> of a room presence: the item and the status codes. */
export function userX(item: ItemDetails, codes: readonly number[], extra?: Element): Element {
  const children: Element[] = [];
  if (item.actor !== undefined) children.push(xml('actor', { nick: item.actor }));
  if (item.reason !== undefined) children.push(xml('reason', {}, item.reason));
  return xml(
    'x',
    { xmlns: MUC.USER },
    xml('item', { affiliation: item.affiliation, role: item.role, jid: item.jid, nick: item.nick }, ...children),
    extra ?? null,
    ...codes.map((code) => xml('status', { code: String(code) })),
  );
}
