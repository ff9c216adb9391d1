// XEP-0191 JID matching (the order of XEP-0016): an item matches
//   user@domain/resource  that full JID only;
//   user@domain           any resource of that account, and the bare JID itself;
//   domain/resource       that resource of the domain itself only;
//   domain                the domain, any user@domain, domain/resource, and any subdomain.
import type { Jid } from '../../src/jid.js';

/** The item strings that would match `jid`: look each up in a set of blocked items. */
export function matchKeys(jid: Jid): string[] {
  const keys: string[] = [];
  if (jid.local !== '') {
    if (jid.resource !== '') keys.push(jid.toString());
    keys.push(`${jid.local}@${jid.domain}`);
  } else if (jid.resource !== '') {
    keys.push(jid.toString());
  }
  // The domain and each parent domain: blocking example.org blocks chat.example.org too.
  let domain = jid.domain;
  for (;;) {
    keys.push(domain);
    const dot = domain.indexOf('.');
    if (dot === -1 || dot === domain.length - 1) break;
    domain = domain.slice(dot + 1);
  }
  return keys;
}

export function isBlockedBy(items: ReadonlySet<string>, jid: Jid): boolean {
  if (items.size === 0) return false;
  for (const key of matchKeys(jid)) if (items.has(key)) return true;
  return false;
}

/** Whether the blocked `item` (a prepared JID) covers `jid`. */
export function itemMatches(item: Jid, jid: Jid): boolean {
  if (item.local !== '') {
    if (item.local !== jid.local || item.domain !== jid.domain) return false;
    return item.resource === '' || item.resource === jid.resource;
  }
  if (item.resource !== '') return jid.local === '' && jid.domain === item.domain && jid.resource === item.resource;
  return jid.domain === item.domain || jid.domain.endsWith(`.${item.domain}`);
}
