// `starling import`: accounts from XEP-0227 data (ours, Prosody's migrator's, ejabberd's
// export_piefxis) into the configured storage, through the modules' stores. An account that
// exists already is reported and left as it is; a plaintext password becomes SCRAM keys.
import { xml, type Element } from '@xmpp/xml';
import { AccountError, type Accounts } from '../auth/accounts.js';
import type { StoredCredential } from '../storage/accounts.js';
import { IdGenerator, idAt, idTime } from '../storage/archive/ids.js';
import type { NewItem } from '../storage/archive/store.js';
import { tryParseJid, type Jid } from '../jid.js';
import { NS_DATA } from '../xml/data-forms.js';
import { cloneElement, detach } from '../xml/clone.js';
import { applyConfigForm, itemLimit, PEP_DEFAULTS, type NodeConfig } from '../../modules/pubsub/node-config.js';
import type { Affiliation } from '../../modules/pubsub/store.js';
import type { RosterItem, Subscription } from '../../modules/roster/service.js';
import { privateKey } from '../../modules/private/migrations.js';
import { NS_PIE_MAM, NS_PIE_SCRAM, type PieUser } from './files.js';
import type { PieStores } from './stores.js';

const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
const NS_DELAY = 'urn:xmpp:delay';
const SUBSCRIPTIONS: readonly string[] = ['none', 'to', 'from', 'both'];
const AFFILIATIONS: readonly string[] = ['owner', 'publisher', 'member', 'outcast'];
const DIGEST_BYTES: Record<string, number> = { 'SCRAM-SHA-1': 20, 'SCRAM-SHA-256': 32 };
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A problem with one account's data: the account is not imported (or not completely). */
export class ImportProblem extends Error {}

/** A stanza of the file as it is stored: in jabber:client. */
function stanzaText(el: Element): string {
  const copy = detach(el);
  if (!copy.attrs.xmlns || copy.attrs.xmlns !== 'jabber:client') copy.attrs.xmlns = 'jabber:client';
  return copy.toString();
}

/** A child element as stored on its own (its namespace declared on it). */
function standalone(el: Element): string {
  const copy = detach(el);
  copy.attrs.xmlns ??= String(el.getNS() ?? '');
  return copy.toString();
}

function credentials(user: Element): StoredCredential[] {
  const out: StoredCredential[] = [];
  for (const c of user.getChildren('scram-credentials', NS_PIE_SCRAM)) {
    const mechanism = String(c.attrs.mechanism ?? '');
    if (mechanism !== 'SCRAM-SHA-1' && mechanism !== 'SCRAM-SHA-256') continue; // SCRAM-SHA-512: not a mechanism of ours
    const iterations = Number(c.getChildText('iter-count')?.trim());
    const salt = c.getChildText('salt')?.trim();
    const serverKey = c.getChildText('server-key')?.trim();
    const storedKey = c.getChildText('stored-key')?.trim();
    if (!Number.isSafeInteger(iterations) || iterations < 1 || !salt || !serverKey || !storedKey)
      throw new ImportProblem(`its <scram-credentials mechanism="${mechanism}"/> is incomplete`);
    const size = DIGEST_BYTES[mechanism];
    if (Buffer.from(storedKey, 'base64').length === size && Buffer.from(serverKey, 'base64').length === size) {
      out.push({ mechanism, iterations, salt, serverKey, storedKey });
      continue;
    }
    // ejabberd (23.01) keeps its keys and salt base64-encoded and encodes them once more in the file.
    const inner = (b64: string) => Buffer.from(b64, 'base64').toString('latin1');
    const unwrapped = [salt, serverKey, storedKey].map(inner);
    if (!unwrapped.every((v) => BASE64.test(v)) || Buffer.from(unwrapped[2]!, 'base64').length !== size || Buffer.from(unwrapped[1]!, 'base64').length !== size) {
      throw new ImportProblem(`its <scram-credentials mechanism="${mechanism}"/> keys are not ${size} bytes long`);
    }
    out.push({ mechanism, iterations, salt: unwrapped[0]!, serverKey: unwrapped[1]!, storedKey: unwrapped[2]! });
  }
  return out;
}

function rosterItems(user: Element, self: Jid): { contact: string; item: RosterItem }[] {
  const out: { contact: string; item: RosterItem }[] = [];
  for (const query of user.getChildren('query', NS_ROSTER)) {
    for (const i of query.getChildren('item')) {
      const jid = tryParseJid(String(i.attrs.jid ?? ''));
      if (!jid || jid.bare.equals(self)) continue; // as Prosody: no self-contact
      const subscription = SUBSCRIPTIONS.includes(String(i.attrs.subscription)) ? (i.attrs.subscription as Subscription) : 'none';
      const groups = [...new Set(i.getChildren('group').map((g) => g.text()))].filter((g) => g !== '');
      out.push({
        contact: jid.bare.toString(),
        item: { jid: jid.bare.toString(), name: i.attrs.name || undefined, subscription, ask: i.attrs.ask === 'subscribe', approved: i.attrs.approved === 'true', groups },
      });
    }
  }
  return out;
}

/** A node configuration from a submitted form: each field this server knows taken, the others left (other servers have more options). */
function nodeConfig(form: Element | undefined, limit: number): NodeConfig {
  let config = PEP_DEFAULTS;
  for (const field of form?.getChildren('field') ?? []) {
    if (field.attrs.var === 'FORM_TYPE') continue;
    try {
      config = applyConfigForm(config, xml('x', { xmlns: NS_DATA, type: 'submit' }, cloneElement(field)), limit);
    } catch {
      // an option of another server, or a value this one does not take
    }
  }
  return config;
}

async function importPep(stores: PieStores, u: PieUser, self: Jid): Promise<void> {
  const service = self.toString();
  const account = { host: u.host, username: self.local };
  const limit = stores.maxItems(u.host);
  const configs = new Map<string, NodeConfig>();
  const affiliations = new Map<string, [string, Affiliation][]>();
  const subscriptions = new Map<string, { jid: string; subid?: string }[]>();
  for (const owner of u.user.getChildren('pubsub', NS_PUBSUB_OWNER)) {
    for (const el of owner.getChildElements()) {
      const node = el.attrs.node as string | undefined;
      if (!node) continue;
      if (el.name === 'configure') configs.set(node, nodeConfig(el.getChild('x', NS_DATA), limit));
      else if (el.name === 'affiliations') {
        const list = affiliations.get(node) ?? [];
        for (const a of el.getChildren('affiliation'))
          if (a.attrs.jid && AFFILIATIONS.includes(String(a.attrs.affiliation))) list.push([String(a.attrs.jid), a.attrs.affiliation as Affiliation]);
        affiliations.set(node, list);
      } else if (el.name === 'subscriptions') {
        const list = subscriptions.get(node) ?? [];
        // Prosody 0.12 writes subscribed="subscribed" where XEP-0060 has subscription="subscribed".
        for (const s of el.getChildren('subscription'))
          if (s.attrs.jid && (s.attrs.subscription ?? s.attrs.subscribed) === 'subscribed') list.push({ jid: s.attrs.jid, subid: s.attrs.subid });
        subscriptions.set(node, list);
      }
    }
  }
  const items = new Map<string, Element[]>();
  for (const pubsub of u.user.getChildren('pubsub', NS_PUBSUB)) {
    for (const el of pubsub.getChildren('items')) {
      const node = el.attrs.node as string | undefined;
      if (!node) continue;
      items.set(node, [...(items.get(node) ?? []), ...el.getChildren('item')]);
      if (!configs.has(node)) configs.set(node, PEP_DEFAULTS);
    }
  }
  for (const [node, config] of configs) {
    await stores.pubsub.create(service, node, config, account, Number.MAX_SAFE_INTEGER);
    const keep = Math.max(itemLimit(config, limit), items.get(node)?.length ?? 0);
    for (const item of items.get(node) ?? []) {
      const payload = item.getChildElements()[0];
      if (!payload || !item.attrs.id) continue;
      await stores.pubsub.publish(service, node, { id: String(item.attrs.id), publisher: String(item.attrs.publisher ?? service), payload: standalone(payload) }, keep);
    }
    const affs = affiliations.get(node) ?? [];
    if (affs.length > 0) await stores.pubsub.setAffiliations(service, node, affs);
    for (const s of subscriptions.get(node) ?? []) await stores.pubsub.subscribe(service, node, s.jid, s.subid ?? idAt(Date.now()));
  }
}

/** The time of an archived or stored message: its delay stamp (from `host` for offline messages), else now. */
function stamp(delay: Element | undefined): number {
  const ms = delay ? Date.parse(String(delay.attrs.stamp ?? '')) : Number.NaN;
  return Number.isFinite(ms) ? ms : Date.now();
}

function offlineItems(u: PieUser): NewItem[] {
  const out: NewItem[] = [];
  for (const list of u.user.getChildren('offline-messages')) {
    for (const message of list.getChildElements()) {
      if (message.name !== 'message') continue;
      const copy = detach(message);
      // The delay the exporting server added ("Offline Storage") is the time it stored it: ours again when delivered.
      const ours = copy.getChildren('delay', NS_DELAY).find((d: Element) => d.attrs.from === u.host);
      if (ours) copy.children = copy.children.filter((c: Element | string) => c !== ours);
      const from = tryParseJid(String(message.attrs.from ?? ''));
      out.push({ id: idAt(stamp(ours)), withBare: from?.bare.toString() ?? u.host, withResource: from?.resource ?? '', direction: 'in', stanza: stanzaText(copy) });
    }
  }
  return out;
}

function archiveItems(u: PieUser, self: Jid): NewItem[] {
  const read: { ts: number; id: string; item: Omit<NewItem, 'id'> }[] = [];
  for (const archive of u.user.getChildren('archive', NS_PIE_MAM)) {
    for (const result of archive.getChildElements()) {
      const forwarded = result.getChild('forwarded', 'urn:xmpp:forward:0');
      const message = forwarded?.getChildElements().find((c) => c.name === 'message');
      if (!forwarded || !message) continue;
      const from = tryParseJid(String(message.attrs.from ?? ''));
      const to = tryParseJid(String(message.attrs.to ?? ''));
      const out = !from || from.bare.equals(self);
      const other = out ? to : from;
      read.push({
        ts: stamp(forwarded.getChild('delay', NS_DELAY)),
        id: String(result.attrs.id ?? ''),
        item: { withBare: other?.bare.toString() ?? self.toString(), withResource: other?.resource ?? '', direction: out ? 'out' : 'in', stanza: stanzaText(message) },
      });
    }
  }
  // In time order, and in the file's order within one time (stamps may have whole seconds only):
  // our own ids carry their time and keep it; another server's get new ones, increasing.
  read.sort((a, b) => a.ts - b.ts);
  let clock = 0;
  const ids = new IdGenerator(() => clock);
  return read.map(({ ts, id, item }) => {
    clock = ts;
    return { ...item, id: idTime(id) === ts ? id : ids.next() };
  });
}

export type ImportOutcome = { imported: Jid } | { exists: Jid };

/** Imports one account with everything of it the file carries. */
export async function importUser(accounts: Accounts, stores: PieStores, u: PieUser): Promise<ImportOutcome> {
  let self: Jid;
  try {
    self = accounts.userJid(`${u.name}@${u.host}`);
  } catch (err) {
    throw new ImportProblem((err as Error).message);
  }
  if (await accounts.exists(self)) return { exists: self };
  const scram = credentials(u.user);
  const password = u.user.attrs.password as string | undefined;
  try {
    if (scram.length > 0) await accounts.store.create(self.domain, self.local, scram);
    else if (password) await accounts.create(self, password);
    else throw new ImportProblem('it has neither SCRAM credentials nor a password');
  } catch (err) {
    if (err instanceof AccountError && err.condition === 'conflict') return { exists: self };
    if (err instanceof AccountError) throw new ImportProblem(err.message);
    throw err;
  }
  try {
    await importData(stores, u, self);
  } catch (err) {
    // Not half an account: it goes, with what was imported of it (the rows cascade).
    await accounts.store.delete(self.domain, self.local);
    throw err;
  }
  return { imported: self };
}

async function importData(stores: PieStores, u: PieUser, self: Jid): Promise<void> {
  const { host } = u;
  const username = self.local;

  const roster = rosterItems(u.user, self);
  const requests = u.user.getChildren('presence').filter((p) => p.attrs.type === 'subscribe' && tryParseJid(String(p.attrs.from ?? '')));
  if (roster.length > 0 || requests.length > 0) {
    await stores.roster.locked(host, username, async (tx) => {
      for (const { contact, item } of roster) await tx.put(host, username, contact, item);
      for (const p of requests) {
        const from = tryParseJid(String(p.attrs.from))!.bare.toString();
        const stanza = detach(p);
        stanza.attrs.to ??= self.toString();
        await tx.setRequest(host, username, from, stanzaText(stanza));
      }
    });
  }

  const vcard = u.user.getChild('vCard', 'vcard-temp');
  if (vcard && vcard.getChildElements().length > 0) await stores.vcard.set(host, username, standalone(vcard));

  const privateEntries: [string, string][] = [];
  for (const query of u.user.getChildren('query', NS_PRIVATE)) {
    for (const el of query.getChildElements()) privateEntries.push([privateKey(String(el.getNS() ?? ''), el.getName()), standalone(el)]);
  }
  if (privateEntries.length > 0) await stores.private.update(host, username, (entries) => privateEntries.forEach(([k, v]) => entries.set(k, v)));

  await importPep(stores, u, self);

  const offline = offlineItems(u);
  if (offline.length > 0) await stores.offline.appendMany(host, username, offline);
  const archived = archiveItems(u, self);
  if (archived.length > 0) await stores.mam.appendMany(host, username, archived);
}
