// One element from a string we wrote ourselves (stored stanzas), through the same parser.
import type { Element } from '@xmpp/xml';
import { XmlStreamParser, type XmlStreamError } from './parser.js';

const WRAP_OPEN = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/** Parses one stored element; throws when the text is not exactly one well-formed element. */
export function parseElement(text: string): Element {
  let result: Element | undefined;
  let failure: XmlStreamError | undefined;
  const parser = new XmlStreamParser(
    { maxStanzaBytes: Math.max(1024, Buffer.byteLength(text) * 2), maxDepth: 256, maxAttributes: 1024 },
    {
      streamStart: () => {},
      stanza: (el) => {
        if (result) failure ??= new Error('more than one element') as XmlStreamError;
        result = el;
      },
      streamEnd: () => {},
      error: (err) => (failure ??= err),
    },
  );
  parser.write(WRAP_OPEN + text);
  if (failure) throw failure;
  if (!result) throw new Error('no complete element');
  return result;
}
