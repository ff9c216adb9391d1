// A deep copy of an element (ltx has no Element#clone): attributes copied, children copied; and a
// self-contained copy to store (private XML, vCards, pubsub items) and read back on its own.
import { Element } from '@xmpp/xml';

export function cloneElement(el: Element): Element {
  const copy = new Element(el.name, el.attrs);
  for (const child of el.children) copy.children.push(typeof child === 'string' ? child : withParent(cloneElement(child), copy));
  return copy;
}

function withParent(child: Element, parent: Element): Element {
  child.parent = parent;
  return child;
}

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
