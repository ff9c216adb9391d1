// `starling export`: the accounts of this server as XEP-0227 data (urn:xmpp:pie:0), as
// Prosody's xep0227 store writes it: SCRAM keys (never a password), roster with pending
// inbound requests, vCard, private XML (bookmarks of XEP-0048 among it), PEP nodes
// (configuration and affiliations as pubsub#owner, items as pubsub; XEP-0402 bookmarks
// among them), offline messages, and the message archive (urn:xmpp:pie:0#mam).
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { xml, type Element } from '@xmpp/xml';
import type { AccountStore } from '../storage/accounts.js';
import type { ArchiveStore, ArchivedMessage } from '../storage/archive/store.js';
import { parseElement } from '../xml/parse.js';
import { configForm } from '../../modules/pubsub/node-config.js';
import { NS_PIE, NS_PIE_MAM, NS_PIE_SCRAM, NS_XINCLUDE } from './files.js';
import type { PieStores } from './stores.js';

const NS_ROSTER = 'jabber:iq:roster';
const NS_PRIVATE = 'jabber:iq:private';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
const NS_DELAY = 'urn:xmpp:delay';
const MECHANISMS = ['SCRAM-SHA-1', 'SCRAM-SHA-256'];
const DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n";

/** A stored stanza, as an element of the file: in jabber:client when it names no namespace. */
function stanzaElement(stored: string): Element {
  const el = parseElement(stored);
  el.attrs.xmlns ??= 'jabber:client';
  return el;
}

async function* archiveItems(archive: ArchiveStore, host: string, username: string): AsyncGenerator<ArchivedMessage> {
  let after: string | undefined;
  for (;;) {
    const page = await archive.page(host, username, { max: 500, countLimit: 0, after });
    for (const item of page.items) yield item;
    if (page.complete || page.items.length === 0) return;
    after = page.items.at(-1)!.id;
  }
}

/** The <user/> element of one account. */
export async function exportUser(accounts: AccountStore, stores: PieStores, host: string, username: string): Promise<Element> {
  const user = xml('user', { name: username });
  for (const mechanism of MECHANISMS) {
    const c = await accounts.credential(host, username, mechanism);
    if (!c) continue;
    user.append(
      xml(
        'scram-credentials',
        { xmlns: NS_PIE_SCRAM, mechanism },
        xml('iter-count', {}, String(c.iterations)),
        xml('salt', {}, c.salt),
        xml('server-key', {}, c.serverKey),
        xml('stored-key', {}, c.storedKey),
      ),
    );
  }

  const items = await stores.roster.items(host, username);
  const requests = await stores.roster.requests(host, username);
  if (items.length > 0 || requests.length > 0) {
    // No roster version: versions are this server's (XEP-0237); the importing one starts its own.
    user.append(
      xml(
        'query',
        { xmlns: NS_ROSTER },
        ...items.map((i) =>
          xml(
            'item',
            {
              jid: i.jid,
              subscription: i.subscription,
              ...(i.name !== undefined ? { name: i.name } : {}),
              ...(i.ask ? { ask: 'subscribe' } : {}),
              ...(i.approved ? { approved: 'true' } : {}),
            },
            ...i.groups.map((g) => xml('group', {}, g)),
          ),
        ),
      ),
    );
    // Pending inbound subscription requests, as the subscribe stanzas (as Prosody writes them).
    for (const r of requests) user.append(stanzaElement(r.stanza));
  }

  const vcard = await stores.vcard.get(host, username);
  if (vcard !== undefined) user.append(parseElement(vcard));

  const privateXml = await stores.private.all(host, username);
  if (privateXml.size > 0) user.append(xml('query', { xmlns: NS_PRIVATE }, ...[...privateXml.values()].map((v) => parseElement(v))));

  const service = `${username}@${host}`;
  const nodes = await stores.pubsub.nodes(service);
  if (nodes.size > 0) {
    const owner = xml('pubsub', { xmlns: NS_PUBSUB_OWNER });
    const published = xml('pubsub', { xmlns: NS_PUBSUB });
    const affiliations = await stores.pubsub.affiliations(service);
    const subscriptions = await stores.pubsub.subscriptions(service);
    for (const [node, config] of nodes) {
      const form = configForm(config, 'form');
      form.attrs.type = 'submit';
      owner.append(xml('configure', { node }, form));
      const affs = affiliations.filter((a) => a.node === node);
      if (affs.length > 0) owner.append(xml('affiliations', { node }, ...affs.map((a) => xml('affiliation', { jid: a.jid, affiliation: a.affiliation }))));
      const subs = subscriptions.filter((s) => s.node === node);
      if (subs.length > 0) owner.append(xml('subscriptions', { node }, ...subs.map((s) => xml('subscription', { jid: s.jid, subscription: 'subscribed', subid: s.subid }))));
      const nodeItems = await stores.pubsub.items(service, node);
      published.append(xml('items', { node }, ...nodeItems.map((i) => xml('item', { id: i.id, publisher: i.publisher }, parseElement(i.payload)))));
    }
    user.append(owner, published);
  }

  const offline: Element[] = [];
  for await (const item of archiveItems(stores.offline, host, username)) {
    const message = stanzaElement(item.stanza);
    message.append(xml('delay', { xmlns: NS_DELAY, from: host, stamp: new Date(item.ts).toISOString() }, 'Offline Storage'));
    offline.push(message);
  }
  if (offline.length > 0) user.append(xml('offline-messages', {}, ...offline));

  const archived: Element[] = [];
  for await (const item of archiveItems(stores.mam, host, username)) {
    archived.push(
      xml(
        'result',
        { xmlns: 'urn:xmpp:mam:2', id: item.id },
        xml('forwarded', { xmlns: 'urn:xmpp:forward:0' }, xml('delay', { xmlns: NS_DELAY, stamp: new Date(item.ts).toISOString() }), stanzaElement(item.stanza)),
      ),
    );
  }
  if (archived.length > 0) user.append(xml('archive', { xmlns: NS_PIE_MAM }, ...archived));
  return user;
}

/** Writes the <host/> element of `host` (every account of it) to `fd`; returns how many accounts. */
async function writeHost(fd: number, accounts: AccountStore, stores: PieStores, host: string, attrs: Record<string, string> = {}): Promise<number> {
  const names = await accounts.list(host);
  writeSync(
    fd,
    `${xml('host', { ...attrs, jid: host })
      .toString()
      .replace(/\/>$/, '>')}\n`,
  );
  for (const name of names) writeSync(fd, `${(await exportUser(accounts, stores, host, name)).toString()}\n`);
  writeSync(fd, '</host>\n');
  return names.length;
}

/** Only its owner can read an export: it holds password keys and private data (XEP-0227 §6). */
const open = (file: string) => openSync(file, 'w', 0o600);

export interface ExportResult {
  files: string[];
  accounts: number;
}

/**
 * Writes `hosts` to `target`: one file holding them all, or (`directory`) an index file
 * (index.xml) including one file per host, named after it (XEP-0227 §5.1).
 */
export async function exportTo(target: string, directory: boolean, hosts: string[], accounts: AccountStore, stores: PieStores): Promise<ExportResult> {
  let count = 0;
  if (!directory) {
    const fd = open(target);
    try {
      writeSync(fd, `${DECLARATION}<server-data xmlns='${NS_PIE}'>\n`);
      for (const host of hosts) count += await writeHost(fd, accounts, stores, host);
      writeSync(fd, '</server-data>\n');
    } finally {
      closeSync(fd);
    }
    return { files: [target], accounts: count };
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  for (const host of hosts) {
    const file = path.join(target, `${host}.xml`);
    const fd = open(file);
    try {
      writeSync(fd, DECLARATION);
      count += await writeHost(fd, accounts, stores, host, { xmlns: NS_PIE });
    } finally {
      closeSync(fd);
    }
    files.push(file);
  }
  const index = path.join(target, 'index.xml');
  const fd = open(index);
  try {
    const root = xml('server-data', { xmlns: NS_PIE, 'xmlns:xi': NS_XINCLUDE }, ...hosts.map((h) => xml('xi:include', { href: `${h}.xml` })));
    writeSync(fd, `${DECLARATION}${root.toString()}\n`);
  } finally {
    closeSync(fd);
  }
  return { files: [index, ...files], accounts: count };
}
