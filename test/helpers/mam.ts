// XEP-0313 queries from a test client, to one's own archive or a room's (test/integration/mam.test.ts,
// muc-mam.test.ts): the form fields and RSM paging (XEP-0059) asked for, and what came back.
import type { Element } from '@xmpp/xml';
import { xml, type TestClient } from './clients.js';
import { purgePasses, type PurgePass } from '../../src/storage/archive/retention.js';

export const MAM = 'urn:xmpp:mam:2';
export const RSM = 'http://jabber.org/protocol/rsm';
export const FORWARD = 'urn:xmpp:forward:0';
const DATA = 'jabber:x:data';

export interface MamQueryOptions {
  /** The archive queried: a room's JID; none for one's own. */
  to?: string;
  with?: string;
  start?: string;
  end?: string;
  afterId?: string;
  beforeId?: string;
  ids?: string[];
  /** A form field added after the others. */
  extraField?: Element;
  max?: number;
  after?: string;
  before?: string;
  index?: number;
  flip?: boolean;
}

export interface MamQueryResult {
  iq: Element;
  results: Element[];
  /** Result ids, in the order received. */
  ids: string[];
  /** The archived messages' bodies, in the order received. */
  bodies: (string | undefined)[];
  complete?: string;
  first?: string;
  firstIndex?: string;
  last?: string;
  count?: string;
}

/** A data-form field with its values. */
export function field(name: string, ...values: string[]): Element {
  return xml('field', { var: name }, ...values.map((v) => xml('value', {}, v)));
}

/** The archived message inside a result. */
export const forwarded = (result: Element) => result.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('message')!;

let seq = 0;

/** A MAM query; resolves with the IQ reply and the results that came before it. */
export async function mamQuery(c: TestClient, o: MamQueryOptions = {}, timeoutMs = 5000): Promise<MamQueryResult> {
  const queryid = `mam-q${++seq}`;
  const fields: Element[] = [];
  if (o.with !== undefined) fields.push(field('with', o.with));
  if (o.start !== undefined) fields.push(field('start', o.start));
  if (o.end !== undefined) fields.push(field('end', o.end));
  if (o.afterId !== undefined) fields.push(field('after-id', o.afterId));
  if (o.beforeId !== undefined) fields.push(field('before-id', o.beforeId));
  if (o.ids !== undefined) fields.push(field('ids', ...o.ids));
  if (o.extraField) fields.push(o.extraField);
  const form = fields.length ? xml('x', { xmlns: DATA, type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)), ...fields) : null;
  const rsmChildren: Element[] = [];
  if (o.max !== undefined) rsmChildren.push(xml('max', {}, String(o.max)));
  if (o.after !== undefined) rsmChildren.push(xml('after', {}, o.after));
  if (o.before !== undefined) rsmChildren.push(xml('before', {}, o.before));
  if (o.index !== undefined) rsmChildren.push(xml('index', {}, String(o.index)));
  const set = rsmChildren.length ? xml('set', { xmlns: RSM }, ...rsmChildren) : null;
  const id = `mam-iq${seq}`;
  await c.send(xml('iq', { type: 'set', id, ...(o.to ? { to: o.to } : {}) }, xml('query', { xmlns: MAM, queryid }, form, set, o.flip ? xml('flip-page') : null)));
  const reply = await c.next((el) => el.name === 'iq' && el.attrs.id === id, timeoutMs);
  // The results precede the IQ result on the stream: all are in the inbox now.
  const results: Element[] = [];
  for (;;) {
    const r = await c.next((el) => el.name === 'message' && el.getChild('result', MAM)?.attrs.queryid === queryid, 1).catch(() => undefined);
    if (!r) break;
    results.push(r);
  }
  const fin = reply.getChild('fin', MAM);
  const rsm = fin?.getChild('set', RSM);
  return {
    iq: reply,
    results,
    ids: results.map((r) => r.getChild('result', MAM)!.attrs.id!),
    bodies: results.map((r) => forwarded(r).getChildText('body') ?? undefined),
    complete: fin?.attrs.complete,
    first: rsm?.getChildText('first') ?? undefined,
    firstIndex: rsm?.getChild('first')?.attrs.index,
    last: rsm?.getChildText('last') ?? undefined,
    count: rsm?.getChildText('count') ?? undefined,
  };
}

/**
 * The next retention pass over the archive store `store` ('mam', 'muc_mam'): listen before the
 * server that runs it starts (its first pass follows the start).
 */
export function nextPurgePass(store: string): Promise<PurgePass> {
  return new Promise((resolve) => {
    const listener = (pass: PurgePass) => {
      if (pass.store !== store) return;
      purgePasses.off('pass', listener);
      resolve(pass);
    };
    purgePasses.on('pass', listener);
  });
}
