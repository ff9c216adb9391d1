// `starling check`: the DNS SRV records of each host (RFC 6120 §3.2.1, XEP-0368), looked up with
// a short timeout. A missing record is a warning (clients and servers then fall back to the
// domain itself on the default port); no DNS at all (an offline machine) is a note, not a failure.
import dns from 'node:dns';
import net from 'node:net';
import { domainToASCII } from 'node:url';
import type { SrvResolver } from './s2s/resolve.js';
import { OperatorError } from './operator-error.js';

export interface SrvFindings {
  warnings: string[];
  notes: string[];
}

export interface SrvCheckOptions {
  /** Which services the configuration offers (no s2s listener: no server records needed). */
  client: boolean;
  server: boolean;
  resolver: SrvResolver;
}

const SERVICES = [
  { prefix: '_xmpp-client._tcp', client: true, what: 'clients, STARTTLS' },
  { prefix: '_xmpps-client._tcp', client: true, what: 'clients, direct TLS' },
  { prefix: '_xmpp-server._tcp', client: false, what: 'servers, STARTTLS' },
  { prefix: '_xmpps-server._tcp', client: false, what: 'servers, direct TLS' },
];

/** DNS answers meaning "no such record" (NXDOMAIN, NODATA); anything else: DNS did not answer. */
const ABSENT = new Set<string>([dns.NODATA, dns.NOTFOUND]);

type Lookup = { name: string; what: string } & ({ records: dns.SrvRecord[] } | { absent: true } | { error: string });

/** A resolver of its own: `servers` (host or host:port) or the system's, one try of `timeoutMs`. */
export function srvResolver(timeoutMs: number, servers?: string[]): dns.promises.Resolver {
  const resolver = new dns.promises.Resolver({ timeout: timeoutMs, tries: 1 });
  if (servers?.length) {
    try {
      resolver.setServers(servers);
    } catch {
      throw new OperatorError(`--dns-server ${servers.join(',')}: not an IP address (or [IPv6]:port, IPv4:port)`);
    }
  }
  return resolver;
}

export async function checkSrvRecords(hosts: readonly string[], options: SrvCheckOptions): Promise<SrvFindings> {
  const findings: SrvFindings = { warnings: [], notes: [] };
  const lookups: Promise<Lookup>[] = [];
  const skipped: string[] = [];
  for (const host of hosts) {
    const ascii = domainToASCII(host);
    // localhost, a name of one label or an address literal is not looked up in DNS.
    if (!ascii || !ascii.includes('.') || ascii === 'localhost' || ascii.endsWith('.localhost') || net.isIP(host.replace(/^\[|\]$/g, ''))) {
      skipped.push(host);
      continue;
    }
    for (const s of SERVICES) if (s.client ? options.client : options.server) lookups.push(lookup(options.resolver, `${s.prefix}.${ascii}`, s.what));
  }
  if (skipped.length) findings.notes.push(`DNS SRV records not checked for ${skipped.join(', ')} (not a name in public DNS)`);
  const results = await Promise.all(lookups);
  const failed = results.filter((r) => 'error' in r);
  if (failed.length > 0 && failed.length === results.length) {
    findings.notes.push(`DNS SRV records not checked: no answer from DNS (${[...new Set(failed.map((r) => (r as { error: string }).error))].join(', ')})`);
    return findings;
  }
  for (const r of results) {
    if ('absent' in r) findings.warnings.push(`no DNS SRV record ${r.name} (${r.what})`);
    else if ('error' in r) findings.warnings.push(`DNS SRV record ${r.name} could not be looked up (${r.error})`);
    else findings.notes.push(`DNS SRV ${r.name}: ${r.records.map(describe).join(', ')}`);
  }
  return findings;
}

async function lookup(resolver: SrvResolver, name: string, what: string): Promise<Lookup> {
  try {
    const records = await resolver.resolveSrv(name);
    return records.length === 0 ? { name, what, absent: true } : { name, what, records };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return ABSENT.has(code) ? { name, what, absent: true } : { name, what, error: code };
  }
}

function describe(r: dns.SrvRecord): string {
  // A lone "." target: the service is deliberately not offered (RFC 2782).
  if (r.name === '.' || r.name === '') return 'not offered (target ".")';
  return `${r.name}:${r.port} (priority ${r.priority}, weight ${r.weight})`;
}
