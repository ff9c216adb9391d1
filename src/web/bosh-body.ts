// BOSH bodies (XEP-0124): a request's <body/> parsed by the server's parser (restricted XML and
// limits as on TCP, the stanzas' 'jabber:client' namespace taken as the stream's), and the
// serialisation of the responses.
import type { Element } from '@xmpp/xml';
import { escapeXML } from '@xmpp/xml';
import { NS } from '../xml/namespaces.js';
import { XmlStreamError, XmlStreamParser, type XmlLimits } from '../xml/parser.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshRequest {
  /** The <body/> element's attributes as written (xmpp:version, xmpp:restart by their prefix). */
  attrs: Record<string, string | undefined>;
  /** Its child elements: stanzas and nonzas of the XMPP stream. */
  children: Element[];
}

/** Parses one request body; throws XmlStreamError (with its stream error condition) when it is not one. */
export function parseBody(text: string, limits: XmlLimits): BoshRequest {
  let root: Element | undefined;
  let ended = false;
  let failure: XmlStreamError | undefined;
  const children: Element[] = [];
  const parser = new XmlStreamParser(limits, {
    streamStart: (el) => (root = el),
    stanza: (el) => void children.push(el),
    streamEnd: () => (ended = true),
    error: (err) => (failure ??= err),
  });
  parser.write(text);
  if (failure) throw failure;
  if (!root || !ended) throw new XmlStreamError('not-well-formed', 'the request is not one complete <body/>');
  if (root.name !== 'body' || root.attrs.xmlns !== NS_HTTPBIND) throw new XmlStreamError('not-well-formed', `the root must be <body xmlns='${NS_HTTPBIND}'/>`);
  return { attrs: root.attrs, children };
}

/** A response <body/> with `attrs` around `payload` (serialised elements, each standalone). */
export function responseBody(attrs: Record<string, string | number | undefined>, payload = ''): string {
  let body = `<body xmlns='${NS_HTTPBIND}' xmlns:stream='${NS.STREAM}'`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) body += ` ${k}='${escapeXML(String(v))}'`;
  return payload === '' ? `${body}/>` : `${body}>${payload}</body>`;
}

/** A terminal binding condition (XEP-0124 §17.2), for requests that reach no session. */
export function terminate(condition?: string, payload = ''): string {
  return responseBody({ type: 'terminate', condition }, payload);
}
