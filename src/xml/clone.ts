// A deep copy of an element (ltx has no Element#clone): attributes copied, children copied.
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
