// Namespaces of top-level elements on a server stream. The parser keeps names as written
// (`db:result`, `stream:features`), so the prefix is looked up on the element itself, then on
// the peer's stream header: XEP-0220 lets a peer use any prefix it declared for dialback.
import type { Element } from '@xmpp/xml';
import { NS } from '../xml/namespaces.js';

export interface QName {
  ns: string | undefined;
  local: string;
}

/** The (namespace, local name) of a top-level element of a stream opened by `header`. */
export function qname(el: Element, header: Element | undefined): QName {
  const colon = el.name.indexOf(':');
  if (colon === -1) return { ns: el.attrs.xmlns ?? header?.attrs.xmlns ?? NS.SERVER, local: el.name };
  const prefix = el.name.slice(0, colon);
  return { ns: el.attrs[`xmlns:${prefix}`] ?? header?.attrs[`xmlns:${prefix}`], local: el.name.slice(colon + 1) };
}

export function is(name: QName, ns: string, local: string): boolean {
  return name.ns === ns && name.local === local;
}

/** A stanza of a server stream: message, presence or iq in jabber:server (jabber:client tolerated). */
export function isStanza(name: QName): boolean {
  return (name.ns === NS.SERVER || name.ns === NS.CLIENT) && (name.local === 'message' || name.local === 'presence' || name.local === 'iq');
}
