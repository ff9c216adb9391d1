// Types for @xmpp/xml (ltx elements), which ships none.
declare module '@xmpp/xml' {
  export type Node = Element | string;

  export class Element {
    constructor(name: string, attrs?: Record<string, string | undefined>);
    name: string;
    attrs: Record<string, string | undefined> & { xmlns?: string };
    children: Node[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildByAttr(attr: string, val: string, xmlns?: string, recursive?: boolean): Element | undefined;
    getChildElements(): Element[];
    getText(): string;
    getChildText(name: string, xmlns?: string): string | null;
    text(): string;
    text(value: string): this;
    append(...nodes: (Node | null | undefined)[]): this;
    prepend(...nodes: (Node | null | undefined)[]): this;
    cnode(child: Element): Element;
    c(name: string, attrs?: Record<string, string | undefined>): Element;
    t(text: string): this;
    up(): Element;
    root(): Element;
    remove(el: Element | string, xmlns?: string): this;
    toString(): string;
  }

  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (Node | null | undefined | false)[]): Element;
  export function escapeXML(s: string): string;
  export function unescapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
  export function unescapeXMLText(s: string): string;
  export class Parser {
    write(data: string | Buffer): void;
    end(data?: string): void;
    on(event: string, fn: (...args: any[]) => void): this;
  }
  export default xml;
}
