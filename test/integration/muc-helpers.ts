// Shared by the muc-*.test.ts files: a server with the muc module, joining rooms and reading
// what a room sends (XEP-0045), over @xmpp/client connections.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, errorCondition, xml, type TestClient } from '../helpers/clients.js';

export const SERVICE = 'conference.localhost';
export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';
export const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const DATA = 'jabber:x:data';
export const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
export const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'muc'];

export { xml };
/** The stanza error condition of an error stanza. */
export const condition = errorCondition;

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startMucServer(t: Teardown, overrides: Record<string, unknown> = {}, modules = MODULES): Promise<TestServer> {
  return startTestServer(t, { modules_enabled: modules, ...overrides });
}

/**
 * Starts MUC servers, one after the other, on one data directory (made here, removed at
 * teardown): for what must survive a restart. A start may add to the configuration (`more`).
 */
export function restartableMucServer(t: Teardown, overrides: Record<string, unknown> = {}, modules = MODULES): (more?: Record<string, unknown>) => Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'starling-muc-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  return (more = {}) => startMucServer(t, { data_dir: dataDir, ...overrides, ...more }, modules);
}

/** Connects users (created first), all stopped at teardown. */
export async function users(t: Teardown, ts: TestServer, ...names: string[]): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (const name of names) {
    await ts.addUser(name).catch(() => {});
    // @xmpp/client gives a stream 2 s to open: on a loaded machine, try once more.
    clients.push(await connect(ts, name, { resource: 'r' }).catch(() => connect(ts, name, { resource: 'r' })));
  }
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  return clients;
}

let ids = 0;
export function nextId(prefix = 'm'): string {
  return `${prefix}${++ids}`;
}

export async function iq(c: TestClient, type: 'get' | 'set', to: string, payload: Element): Promise<Element> {
  const id = nextId('iq');
  await c.send(xml('iq', { type, id, to }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

export function statusCodes(el: Element): number[] {
  return (el.getChild('x', MUC_USER)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code));
}

export function itemOf(el: Element): Record<string, string> {
  return (el.getChild('x', MUC_USER)?.getChild('item')?.attrs ?? {}) as Record<string, string>;
}

export const fromRoom = (room: string, nick?: string) => (el: Element) => (nick === undefined ? el.attrs.from?.split('/')[0] === room : el.attrs.from === `${room}/${nick}`);

export const presenceFrom = (occupant: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === occupant && el.attrs.type === type;

export const isSelfPresence = (room: string) => (el: Element) => el.name === 'presence' && fromRoom(room)(el) && (el.attrs.type === 'error' || statusCodes(el).includes(110));

export const isSubject = (room: string) => (el: Element) =>
  el.name === 'message' && fromRoom(room)(el) && el.getChild('subject') !== undefined && el.getChild('body') === undefined;

export const groupchatWith = (body: string) => (el: Element) => el.name === 'message' && el.attrs.type === 'groupchat' && el.getChildText('body') === body;

export interface JoinOptions {
  password?: string;
  history?: Record<string, string>;
  /** Send the MUC join element (default true). */
  mucX?: boolean;
  /** Extra children of the presence. */
  children?: Element[];
  /** Wait for the subject (the end of the join sequence; default true when the join succeeds). */
  waitSubject?: boolean;
}

export interface Joined {
  self: Element;
  subject?: Element;
}

/** Sends the join presence; resolves with the self-presence (or the error presence) and the subject. */
export async function join(c: TestClient, room: string, nick: string, o: JoinOptions = {}): Promise<Joined> {
  const x = o.mucX === false ? null : xml('x', { xmlns: MUC }, o.password !== undefined ? xml('password', {}, o.password) : null, o.history ? xml('history', o.history) : null);
  await c.send(xml('presence', { to: `${room}/${nick}` }, x, ...(o.children ?? [])));
  const self = await c.next(isSelfPresence(room));
  if (self.attrs.type === 'error' || o.waitSubject === false) return { self };
  const subject = await c.next(isSubject(room));
  return { self, subject };
}

/** Creates an instant room (§10.1.2): join, then accept the default configuration. */
export async function createInstant(c: TestClient, room: string, nick: string): Promise<Joined> {
  const joined = await join(c, room, nick);
  const result = await iq(c, 'set', room, xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: DATA, type: 'submit' })));
  if (result.attrs.type !== 'result') throw new Error(`instant room refused: ${result.toString()}`);
  return joined;
}

/** Submits configuration values (field var -> values) as the owner. */
export async function configure(c: TestClient, room: string, values: Record<string, string | string[]>): Promise<Element> {
  const fields = Object.entries(values).map(([name, v]) => xml('field', { var: name }, ...(Array.isArray(v) ? v : [v]).map((value) => xml('value', {}, value))));
  return iq(
    c,
    'set',
    room,
    xml(
      'query',
      { xmlns: MUC_OWNER },
      xml('x', { xmlns: DATA, type: 'submit' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#roomconfig')), ...fields),
    ),
  );
}

/** Creates a room with this configuration (reserved room, §10.1.3). */
export async function createRoom(c: TestClient, room: string, nick: string, values: Record<string, string | string[]> = {}): Promise<Joined> {
  const joined = await join(c, room, nick);
  const result = await configure(c, room, values);
  if (result.attrs.type !== 'result') throw new Error(`configuration refused: ${result.toString()}`);
  return joined;
}

export async function groupchat(c: TestClient, room: string, body: string, extra: Element[] = []): Promise<void> {
  await c.send(xml('message', { to: room, type: 'groupchat', id: nextId() }, xml('body', {}, body), ...extra));
}

export async function admin(c: TestClient, room: string, items: Record<string, string>[], reason?: string): Promise<Element> {
  return iq(c, 'set', room, xml('query', { xmlns: MUC_ADMIN }, ...items.map((i) => xml('item', i, reason ? xml('reason', {}, reason) : null))));
}

export async function list(c: TestClient, room: string, filter: Record<string, string>): Promise<Element> {
  return iq(c, 'get', room, xml('query', { xmlns: MUC_ADMIN }, xml('item', filter)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface OpenRoom {
  ts: TestServer;
  /** `<local>@SERVICE`. */
  room: string;
  /** The clients of the occupants, then of the others. */
  clients: TestClient[];
}

export interface OpenRoomOptions {
  /** Users connected as well, who do not join. */
  others?: string[];
  /** The modules enabled (default MODULES). */
  modules?: string[];
  /** A reserved room with this configuration (§10.1.3) instead of an instant room. */
  config?: Record<string, string | string[]>;
}

/**
 * A MUC server with these users connected, and the room `<local>@SERVICE` the first occupant
 * creates; the other occupants join it in order, each under the name capitalised as nick.
 */
export async function openRoom(t: Teardown, local: string, occupants: string[], o: OpenRoomOptions = {}): Promise<OpenRoom> {
  const ts = await startMucServer(t, {}, o.modules);
  const clients = await users(t, ts, ...occupants, ...(o.others ?? []));
  const room = `${local}@${SERVICE}`;
  const nick = (name: string) => name[0]!.toUpperCase() + name.slice(1);
  if (o.config) await createRoom(clients[0]!, room, nick(occupants[0]!), o.config);
  else await createInstant(clients[0]!, room, nick(occupants[0]!));
  for (let i = 1; i < occupants.length; i++) await join(clients[i]!, room, nick(occupants[i]!));
  return { ts, room, clients };
}
