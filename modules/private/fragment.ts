// Stored XML (private XML storage here, and vCards: modules/vcard): an element kept as its
// serialisation, self-contained, and read back with the server's own restricted parser
// (src/xml/parse.ts).
import type { Element } from '@xmpp/xml';
import { cloneElement } from '../../src/xml/clone.js';

/** A self-contained copy of `el`: the namespace prefixes its ancestors declare are declared on it. */
export function detach(el: Element): Element {
  const copy = cloneElement(el);
  for (let p = el.parent; p; p = p.parent) {
    for (const [name, value] of Object.entries(p.attrs)) {
      if (name.startsWith('xmlns:') && value !== undefined && !(name in copy.attrs)) copy.attrs[name] = value;
    }
  }
  return copy;
}
