// Helpers for the federation tests (test/integration/s2s-*.test.ts, conformance/prosody):
// Starling servers with their own domains linked by static routes, clients for any domain
// and port, and certificates from a throwaway test CA made with openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { errorCondition, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { makeJid } from '../../src/jid.js';
import { PASSWORD, startTestServer, type TestServer } from '../helpers/harness.js';

export { errorCondition, xml, PASSWORD };

export const FEDERATION_MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'version', 'vcard'];

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface FederatedServer extends TestServer {
  domain: string;
  /** The s2s STARTTLS port. */
  s2sPort: number;
  user(local: string): Promise<string>;
}

/** A Starling serving `domain` only, with s2s on loopback; `s2s` options merged in. */
export async function startFederated(t: Teardown, domain: string, s2s: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<FederatedServer> {
  const ts = await startTestServer(t, {
    hosts: { [domain]: {} },
    modules_enabled: FEDERATION_MODULES,
    s2s: { connect_timeout: 5, ...s2s },
    ...extra,
  });
  const s2sPort = ts.server.s2sAddresses.find((a) => !a.directTls)!.port;
  return {
    ...ts,
    domain,
    s2sPort,
    async user(local) {
      const jid = makeJid(local, domain);
      await ts.server.core.accounts.create(jid, PASSWORD);
      return jid.toString();
    },
  };
}

/** Static routes both ways between two servers (STARTTLS ports). */
export function link(a: FederatedServer, b: FederatedServer): void {
  a.server.s2s.addRoute(b.domain, `127.0.0.1:${b.s2sPort}`);
  b.server.s2s.addRoute(a.domain, `127.0.0.1:${a.s2sPort}`);
}

/** A TestClient that answers the server's pings, waits 10 s by default, and sends IQs. */
export interface FedClient extends TestClient {
  /** Sends an IQ and waits for its answer. */
  iq(type: 'get' | 'set', to: string | undefined, payload: Element, timeoutMs?: number): Promise<Element>;
}

let ids = 0;

/** A client of any server: `service` like "xmpp://127.0.0.1:5222". */
export async function connectClient(options: { service: string; domain: string; username: string; password?: string; resource?: string; presence?: boolean }): Promise<FedClient> {
  const xmpp = xmppClient({ service: options.service, domain: options.domain, username: options.username, password: options.password ?? PASSWORD, resource: options.resource });
  const c = await startClient(xmpp, { presence: options.presence, timeoutMs: 10_000, answerPings: true });
  return {
    ...c,
    async iq(type, to, payload, timeoutMs) {
      const id = `fed-${++ids}`;
      await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
      return c.next((el) => el.name === 'iq' && el.attrs.id === id, timeoutMs);
    },
  };
}

/** A client of a test Starling. */
export function connectTo(ts: FederatedServer, local: string, resource?: string): Promise<FedClient> {
  return connectClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: ts.domain, username: local, resource });
}

export interface TestCa {
  dir: string;
  caFile: string;
  /** A certificate signed by the CA naming `domain` (DNS-ID, plus the SRV-ID / XmppAddr asked for). */
  issue(domain: string, options?: { srvId?: boolean; xmppAddr?: boolean; dnsId?: boolean; dnsNames?: string[]; cn?: string; name?: string }): { cert: string; key: string };
}

/** A throwaway certification authority (openssl), removed at teardown. */
export function makeTestCa(t: Teardown): TestCa {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const caFile = path.join(dir, 'ca.pem');
  const caKey = path.join(dir, 'ca.key');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=Starling test CA');
  return {
    dir,
    caFile,
    issue(domain, options = {}) {
      const name = options.name ?? domain;
      const sans = [
        ...(options.dnsId === false ? [] : [`DNS:${domain}`]),
        ...(options.dnsNames ?? []).map((n) => `DNS:${n}`),
        ...(options.srvId ? [`otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.${domain}`] : []),
        ...(options.xmppAddr ? [`otherName:1.3.6.1.5.5.7.8.5;UTF8:${domain}`] : []),
      ];
      const ext = path.join(dir, `${name}.ext`);
      // Both purposes: a server's certificate is also its client certificate on outgoing streams.
      writeFileSync(ext, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n${sans.length ? `subjectAltName=${sans.join(',')}\n` : ''}`);
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const cert = path.join(dir, `${name}.pem`);
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${options.cn ?? domain}`);
      openssl('x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext);
      return { cert, key };
    },
  };
}
