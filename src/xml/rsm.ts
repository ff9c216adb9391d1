// Result Set Management (XEP-0059): the <set/> a request pages with, and the <set/> that
// describes the page of a result. Shared by the archives (XEP-0313) and pubsub items.
import { xml, type Element } from '@xmpp/xml';
import { StanzaError } from '../stream/errors.js';

export const NS_RSM = 'http://jabber.org/protocol/rsm';

export interface RsmRequest {
  /** At most this many (capped at the caller's page size). */
  max?: number;
  /** The items after this id. */
  after?: string;
  /** The items before this id; '' for the last page. */
  before?: string;
}

/** The paging a request's <set/> asks for (none: an empty request); index paging is refused (§2.5: it MAY be). */
export function readRsm(parent: Element, maxPage: number): RsmRequest {
  const set = parent.getChild('set', NS_RSM);
  const request: RsmRequest = {};
  if (!set) return request;
  const max = set.getChild('max');
  if (max) {
    const text = max.getText().trim();
    if (!/^\d+$/.test(text)) throw new StanzaError('bad-request', 'RSM <max/> is a non-negative integer');
    request.max = Math.min(Number(text), maxPage);
  }
  const after = set.getChild('after');
  if (after && after.getText().trim() !== '') request.after = after.getText().trim();
  const before = set.getChild('before');
  if (before) request.before = before.getText().trim();
  if (set.getChild('index')) throw new StanzaError('feature-not-implemented', 'paging by index is not supported; page with <after/> or <before/>');
  return request;
}

/** The <set/> of a result page: its first and last ids, the first one's index and the total, when known. */
export function rsmResult(ids: string[], index: number | undefined, count: number | undefined): Element {
  const set = xml('set', { xmlns: NS_RSM });
  const first = ids[0];
  const last = ids[ids.length - 1];
  if (first !== undefined && last !== undefined) {
    set.append(xml('first', index === undefined ? {} : { index: String(index) }, first));
    set.append(xml('last', {}, last));
  }
  if (count !== undefined) set.append(xml('count', {}, String(count)));
  return set;
}
