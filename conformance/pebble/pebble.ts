// Pebble, Let's Encrypt's ACME test server (Debian `pebble`), and pebble-challtestsrv as its DNS
// server, on free loopback ports: every name resolves to 127.0.0.1 (no AAAA), and pebble
// validates HTTP-01 challenges on `httpPort` (the Starling HTTP listener under test). Pebble's
// own HTTPS uses a certificate made here with openssl (the Debian package ships none); its
// issuing CA is generated at each start and fetched from its management interface.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePort, selfSigned, terminate } from '../helpers/daemon.js';

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The PEM file of the certificate of pebble's own HTTPS (what Starling's acme.ca_file trusts). */
  caFile: string;
  /** Pebble's current root CA (PEM), which the certificates it issues chain to. */
  root(): Promise<string>;
  stop(): Promise<void>;
}

/** A free UDP port on loopback (for the DNS server). */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Spawns `command` and resolves once its output matches `ready`; rejects when it exits first. */
function daemon(command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; exited: Promise<void>; output(): string }> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} not ready within 20 s:\n${out}`));
    }, 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, exited, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
}

export async function startPebble(dir: string, httpPort: number): Promise<Pebble> {
  const { cert, key } = selfSigned(dir, 'pebble', 'IP:127.0.0.1');
  const dnsPort = await freeUdpPort();
  const [listenPort, managementPort, challtestManagementPort] = [await freePort(), await freePort(), await freePort()];
  const dns = await daemon(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${challtestManagementPort}`,
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    /Starting management server/,
  );
  const config = path.join(dir, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listenPort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: cert,
        privateKey: key,
        httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let server: Awaited<ReturnType<typeof daemon>>;
  try {
    // No random sleeps before validating, no rejected nonces, and a challenge validated for
    // every order (no authorization reuse): each certificate is really validated.
    server = await daemon('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], /ACME directory available at/, {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
    });
  } catch (err) {
    await terminate(dns.child, dns.exited);
    throw err;
  }
  return {
    directory: `https://127.0.0.1:${listenPort}/dir`,
    caFile: cert,
    root: () =>
      new Promise((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${managementPort}/roots/0`, { ca: readFileSync(cert) }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      }),
    async stop() {
      await terminate(server.child, server.exited);
      await terminate(dns.child, dns.exited);
    },
  };
}
