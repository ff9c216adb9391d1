// Where to connect for a remote domain (RFC 6120 §3.2, XEP-0368):
//
// 1. a static route from the configuration, if any;
// 2. else the SRV records `_xmpps-server._tcp.<domain>` (direct TLS) and
//    `_xmpp-server._tcp.<domain>` (STARTTLS), looked up together and merged into one list,
//    ordered by priority and, within a priority, by weighted random choice (RFC 2782);
//    a lone "." target means that kind of service is not offered;
// 3. else (no SRV record at all) the domain itself on port 5269.
import dns from 'node:dns';
import net from 'node:net';
import { domainToASCII } from 'node:url';
import type { ConnectTarget } from './route-target.js';

export interface SrvResolver {
  resolveSrv(name: string): Promise<dns.SrvRecord[]>;
}

export const DEFAULT_PORT = 5269;

export class ResolveError extends Error {}

/** The targets to try in order; throws ResolveError when the domain says it offers no service. */
export async function resolveTargets(domain: string, resolver: SrvResolver = dns.promises): Promise<ConnectTarget[]> {
  const bare = domain.startsWith('[') && domain.endsWith(']') ? domain.slice(1, -1) : domain;
  if (net.isIP(bare)) return [{ host: bare, port: DEFAULT_PORT, directTls: false }];
  const ascii = domainToASCII(domain);
  if (!ascii) throw new ResolveError(`${domain} is not a domain name DNS can look up`);
  const [direct, starttls] = await Promise.all([lookup(resolver, `_xmpps-server._tcp.${ascii}`), lookup(resolver, `_xmpp-server._tcp.${ascii}`)]);
  const directUsable = !isNoService(direct);
  const starttlsUsable = !isNoService(starttls);
  if (direct.length === 0 && starttls.length === 0) return [{ host: ascii, port: DEFAULT_PORT, directTls: false }];
  const records = [...(directUsable ? direct.map((r) => ({ ...r, directTls: true })) : []), ...(starttlsUsable ? starttls.map((r) => ({ ...r, directTls: false })) : [])];
  if (records.length === 0) throw new ResolveError(`${domain} publishes no XMPP server service (SRV target ".")`);
  return orderSrv(records).map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port, directTls: r.directTls }));
}

function isNoService(records: dns.SrvRecord[]): boolean {
  return records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '');
}

async function lookup(resolver: SrvResolver, name: string): Promise<dns.SrvRecord[]> {
  try {
    return await resolver.resolveSrv(name);
  } catch {
    // ENODATA, ENOTFOUND, and also a failing DNS server: the A/AAAA fallback (or the
    // connection attempt) then reports what is wrong.
    return [];
  }
}

/** RFC 2782 order: ascending priority; within one, weighted random selection. */
export function orderSrv<T extends dns.SrvRecord>(records: T[], random: () => number = Math.random): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Zero-weight records first in the list so they have a small chance (RFC 2782).
    const left = byPriority.get(priority)!.sort((a, b) => a.weight - b.weight);
    while (left.length) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let threshold = random() * total;
        pick = left.findIndex((r) => (threshold -= r.weight) < 0);
        if (pick === -1) pick = left.length - 1;
      }
      out.push(left.splice(pick, 1)[0]!);
    }
  }
  return out;
}
