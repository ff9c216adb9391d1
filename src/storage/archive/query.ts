// The query protocol of XEP-0313 §4 over an archive store (store.ts), shared by every archive a
// client queries (the user archives, the room archives): the XEP-0004 form (with, start, end,
// before-id, after-id, ids), XEP-0059 result set management, <flip-page/>, the result messages
// and <fin/>.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { JidError, parseJid } from '../../jid.js';
import { StanzaError } from '../../stream/errors.js';
import { NS } from '../../xml/namespaces.js';
import { parseElement } from '../../xml/parse.js';
import { readRsm, rsmResult } from '../../xml/rsm.js';
import type { ArchiveKey, ArchivedMessage, Page, PageRequest } from './store.js';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
export const NS_DATA = 'jabber:x:data';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';

export interface ParsedQuery {
  queryid?: string;
  request: Omit<PageRequest, 'countLimit'>;
  /** XEP-0313 §4.3.4: send the page newest first. */
  flip: boolean;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) as ms since the epoch, or undefined.
 * Fractions finer than a millisecond round towards the inside of the range: `round` is 'up'
 * for a start (inclusive lower bound), 'down' for an end.
 */
export function parseDateTime(text: string, round: 'up' | 'down' = 'down'): number | undefined {
  const m = DATE_TIME.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', tz] = m;
  const fields = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  const [year, month, day, hour, minute, second] = fields;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const base = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  // Reject days past the end of the month (Date.UTC would roll them over).
  if (new Date(base).getUTCDate() !== day) return undefined;
  const fraction = frac === '' ? 0 : Number(`0.${frac}`) * 1000;
  let offset = 0;
  if (tz !== 'Z') {
    const sign = tz![0] === '-' ? -1 : 1;
    const [oh, om] = tz!.slice(1).split(':').map(Number) as [number, number];
    if (oh > 23 || om > 59) return undefined;
    offset = sign * (oh * 60 + om) * 60_000;
  }
  const ms = base + fraction - offset;
  return round === 'up' ? Math.ceil(ms) : Math.floor(ms);
}

function fieldValues(field: Element): string[] {
  return field.getChildren('value').map((v) => v.getText());
}

function single(field: Element, name: string): string | undefined {
  const values = fieldValues(field);
  if (values.length > 1) throw new StanzaError('bad-request', `the field '${name}' takes one value`);
  const value = values[0]?.trim();
  return value === '' ? undefined : value;
}

/** Reads a <query xmlns='urn:xmpp:mam:2'/> of an IQ set; throws StanzaError on bad input. */
export function parseQuery(payload: Element, maxPage: number): ParsedQuery {
  const request: ParsedQuery['request'] = { max: maxPage };
  const queryid = payload.attrs.queryid;

  const form = payload.getChild('x', NS_DATA);
  if (form) {
    if (form.attrs.type !== undefined && form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'the query form is to be of type submit');
    for (const field of form.getChildren('field')) {
      const name = field.attrs.var;
      switch (name) {
        case 'FORM_TYPE': {
          const value = single(field, name);
          if (value !== undefined && value !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE is to be ${NS_MAM}`);
          break;
        }
        case 'with': {
          const value = single(field, name);
          if (value === undefined) break;
          try {
            const jid = parseJid(value);
            request.with = jid.isBare ? { bare: jid.toString() } : { bare: jid.bare.toString(), resource: jid.resource };
          } catch (err) {
            if (err instanceof JidError) throw new StanzaError('bad-request', `'with' is not a valid JID: ${err.message}`);
            throw err;
          }
          break;
        }
        case 'start':
        case 'end': {
          const value = single(field, name);
          if (value === undefined) break;
          const ms = parseDateTime(value, name === 'start' ? 'up' : 'down');
          if (ms === undefined) throw new StanzaError('bad-request', `'${name}' is not a XEP-0082 DateTime`);
          request[name] = ms;
          break;
        }
        case 'after-id':
        case 'before-id': {
          const value = single(field, name);
          if (value !== undefined) request[name === 'after-id' ? 'afterId' : 'beforeId'] = value;
          break;
        }
        case 'ids': {
          const ids = fieldValues(field)
            .map((v) => v.trim())
            .filter((v) => v !== '');
          if (ids.length > maxPage) throw new StanzaError('bad-request', `at most ${maxPage} ids in one query`);
          if (ids.length > 0) request.ids = ids;
          break;
        }
        default:
          // XEP-0313 §4.1.5: a field the server does not know.
          throw new StanzaError('feature-not-implemented', `the field '${name ?? ''}' is not supported`);
      }
    }
  }

  Object.assign(request, readRsm(payload, maxPage));

  const flip = payload.getChildren('flip-page').some((c) => c.attrs.xmlns === undefined || c.attrs.xmlns === NS_MAM);
  return { queryid, request, flip };
}

/** XEP-0313 §4.1.5: the form of the fields this archive supports. */
export function queryForm(): Element {
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'form' },
    xml('field', { type: 'hidden', var: 'FORM_TYPE' }, xml('value', {}, NS_MAM)),
    xml('field', { type: 'jid-single', var: 'with' }),
    xml('field', { type: 'text-single', var: 'start' }),
    xml('field', { type: 'text-single', var: 'end' }),
    xml('field', { type: 'text-single', var: 'before-id' }),
    xml('field', { type: 'text-single', var: 'after-id' }),
    xml('field', { type: 'list-multi', var: 'ids' }, xml('validate', { xmlns: NS_XDATA_VALIDATE, datatype: 'xs:string' }, xml('open'))),
  );
}

/** The archived stanza, parsed, as a jabber:client element for <forwarded/>. */
export function archivedStanza(message: ArchivedMessage): Element {
  const stanza = parseElement(message.stanza);
  stanza.attrs.xmlns = NS.CLIENT;
  return stanza;
}

/**
 * One result message (XEP-0313 §4.2). `stanza` is the forwarded message: the archived one as it
 * is by default (a room archive passes it after adjusting what the querier may see).
 */
export function resultMessage(
  archive: string,
  to: string,
  queryid: string | undefined,
  message: ArchivedMessage,
  stanzaId: string,
  stanza: Element = archivedStanza(message),
): Element {
  return xml(
    'message',
    { from: archive, to, id: stanzaId },
    xml(
      'result',
      { xmlns: NS_MAM, ...(queryid === undefined ? {} : { queryid }), id: message.id },
      xml('forwarded', { xmlns: NS_FORWARD }, xml('delay', { xmlns: NS.DELAY, stamp: new Date(message.ts).toISOString() }), stanza),
    ),
  );
}

/**
 * The result messages of a page, in the order they are to be sent: archive order, or newest
 * first with <flip-page/>. Each gets a message id of its own. `forward` makes the forwarded
 * message (the archived one as it is by default); a message it cannot make (an archived stanza
 * that does not parse: corruption, as we wrote it) is left out of the results and handed to
 * `leftOut`, rather than failing the query.
 */
export function* resultMessages(
  archive: string,
  to: string,
  queryid: string | undefined,
  page: Page,
  flip: boolean,
  leftOut: (err: unknown, message: ArchivedMessage) => void,
  forward: (message: ArchivedMessage) => Element = archivedStanza,
): Generator<Element> {
  const prefix = randomBytes(4).toString('hex');
  let n = 0;
  for (const message of flip ? [...page.items].reverse() : page.items) {
    let result: Element;
    try {
      result = resultMessage(archive, to, queryid, message, `${prefix}-${++n}`, forward(message));
    } catch (err) {
      leftOut(err, message);
      continue;
    }
    yield result;
  }
}

/** XEP-0313 §5 (required with #extended): the first and last messages of an archive, if any. */
export function metadata(ends: { first: ArchiveKey; last: ArchiveKey } | undefined): Element {
  const stamp = (ts: number) => new Date(ts).toISOString();
  return xml(
    'metadata',
    { xmlns: NS_MAM },
    ends ? xml('start', { id: ends.first.id, timestamp: stamp(ends.first.ts) }) : null,
    ends ? xml('end', { id: ends.last.id, timestamp: stamp(ends.last.ts) }) : null,
  );
}

/** The <fin/> of the IQ result: completeness and the RSM set of the page. */
export function fin(queryid: string | undefined, page: Page): Element {
  const set = rsmResult(
    page.items.map((i) => i.id),
    page.index,
    page.count,
  );
  return xml('fin', { xmlns: NS_MAM, ...(queryid === undefined ? {} : { queryid }), complete: page.complete ? 'true' : 'false' }, set);
}
