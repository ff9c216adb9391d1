// PubSub test helpers: IQs to a PEP service, and clients whose entity capabilities (XEP-0115)
// announce features such as `<node>+notify` and answer the server's disco#info about them.
import type { Element } from '@xmpp/xml';
import { capsVer } from '../../modules/caps/verification.js';
import { connect, xml, type ConnectOptions, type TestClient } from './clients.js';
import type { TestServer } from './harness.js';

export const PUBSUB = 'http://jabber.org/protocol/pubsub';
export const OWNER = `${PUBSUB}#owner`;
export const EVENT = `${PUBSUB}#event`;
const CAPS = 'http://jabber.org/protocol/caps';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

let ids = 0;

/** Sends an IQ and resolves with its answer. */
export async function iq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `ps${++ids}`;
  await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

/** A data form of `formType` with the given fields. */
export function dataForm(formType: string, fields: Record<string, string | string[]>, type = 'submit'): Element {
  return xml(
    'x',
    { xmlns: 'jabber:x:data', type },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    ...Object.entries(fields).map(([name, v]) => xml('field', { var: name }, ...(Array.isArray(v) ? v : [v]).map((s) => xml('value', {}, s)))),
  );
}

export function publish(c: TestClient, node: string, payload: Element, options: { id?: string; publishOptions?: Record<string, string>; to?: string } = {}): Promise<Element> {
  const item = xml('item', options.id ? { id: options.id } : {}, payload);
  const extra = options.publishOptions ? xml('publish-options', {}, dataForm(`${PUBSUB}#publish-options`, options.publishOptions)) : null;
  return iq(c, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node }, item), extra), options.to);
}

export function items(c: TestClient, to: string | undefined, node: string, attrs: Record<string, string> = {}, ids: string[] = []): Promise<Element> {
  return iq(c, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('items', { node, ...attrs }, ...ids.map((id) => xml('item', { id })))), to);
}

/** The <item/>s of an items result. */
export const itemsOf = (result: Element): Element[] => result.getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item') ?? [];

/** The pubsub-specific error condition of an error answer. */
export const pubsubCondition = (el: Element): string | undefined =>
  el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === `${PUBSUB}#errors`)?.name;

/** Matches a PEP event message from `from` about `node`. */
export const eventFor = (from: string, node: string) => (el: Element) =>
  el.name === 'message' &&
  el.attrs.from === from &&
  el
    .getChild('event', EVENT)
    ?.getChildren('items')
    .some((i) => i.attrs.node === node) === true;

/**
 * Connects with entity capabilities announcing `features` (besides disco#info): answers the
 * server's disco#info for them, and resolves once the server has asked (so it knows them).
 */
export async function connectWithCaps(ts: TestServer, local: string, features: string[], options: ConnectOptions = {}): Promise<TestClient> {
  const c = await connect(ts, local, { ...options, presence: false });
  const asked = await announceCaps(c, features);
  // A round trip: the presence is handled, and the server's disco#info (for a ver it has not
  // seen) has come; a second one once that is answered, so the caps are known when this resolves.
  await ping(c);
  if (asked()) await ping(c);
  return c;
}

/**
 * Makes `c` answer disco#info queries with `features` (besides disco#info) and sends its
 * available presence announcing them with entity capabilities. Returns whether anyone has asked yet.
 */
export async function announceCaps(c: TestClient, features: string[]): Promise<() => boolean> {
  const info = { identities: [{ category: 'client', type: 'pc', name: 'test' }], features: [DISCO_INFO, ...features], forms: [] };
  const ver = capsVer(info, 'sha-1');
  const node = 'https://starling.test/client';
  let asked = false;
  c.xmpp.on('stanza', (el: Element) => {
    const query = el.name === 'iq' && el.attrs.type === 'get' ? el.getChild('query', DISCO_INFO) : undefined;
    if (!query) return;
    asked = true;
    void c.send(
      xml(
        'iq',
        { type: 'result', id: el.attrs.id, to: el.attrs.from },
        xml('query', { xmlns: DISCO_INFO, node: query.attrs.node }, ...info.identities.map((i) => xml('identity', i)), ...info.features.map((f) => xml('feature', { var: f }))),
      ),
    );
  });
  await c.send(xml('presence', {}, xml('c', { xmlns: CAPS, hash: 'sha-1', node, ver })));
  return () => asked;
}

/** An IQ round trip to the server. */
export async function ping(c: TestClient): Promise<void> {
  await iq(c, 'get', xml('ping', { xmlns: 'urn:xmpp:ping' }), 'localhost');
}
