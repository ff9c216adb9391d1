// The TURN credentials Starling hands out (XEP-0215, modules/external_services) checked by a
// real coturn: `turnserver` on loopback with use-auth-secret and the same secret, and
// `turnutils_uclient` (both from the Debian package coturn) allocating relays with the issued
// username and password (two clients relaying to each other through it), and failing with a
// wrong password. Skipped when coturn is not installed; a failure under STARLING_REQUIRE_SERVICES=1.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { connect, xml } from '../../test/helpers/clients.js';
import { DOMAIN, startTestServer } from '../../test/helpers/harness.js';
import { freePort, gate, terminate, waitForPort, which } from '../helpers/daemon.js';

const NS = 'urn:xmpp:extdisco:2';

/** Runs turnutils_uclient; resolves with its exit code (null when killed) and output. */
function uclient(port: number, username: string, password: string): Promise<{ code: number | null; output: string }> {
  // -y: two clients send to each other through their relays; -c: no RTCP allocation; -n 1: one message each.
  const args = ['-p', String(port), '-u', username, '-w', password, '-y', '-c', '-n', '1', '127.0.0.1'];
  return new Promise((resolve) => {
    execFile('turnutils_uclient', args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

t.test('coturn accepts the TURN credentials Starling issues', async (t) => {
  const missing = ['turnserver', 'turnutils_uclient'].filter((c) => !which(c));
  if (!gate(t, 'coturn interop test (conformance/coturn/credentials.test.ts)', missing.length ? `${missing.join(' and ')} not found (apt-get install coturn)` : undefined)) return;

  const secret = randomBytes(24).toString('base64url');
  const turnPort = await freePort();
  const ts = await startTestServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'external_services'],
    modules: { external_services: { secret, ttl: 600, services: [{ type: 'turn', host: '127.0.0.1', port: turnPort, transport: 'udp' }] } },
  });
  await ts.addUser('alice');
  const alice = await connect(ts, 'alice');
  t.teardown(() => alice.stop());
  await alice.send(xml('iq', { type: 'get', id: 'ext1', to: DOMAIN }, xml('services', { xmlns: NS, type: 'turn' })));
  const reply = await alice.next((el) => el.name === 'iq' && el.attrs.id === 'ext1');
  const service = reply.getChild('services', NS)?.getChild('service');
  const username = service?.attrs.username;
  const password = service?.attrs.password;
  t.match(username, /^\d+:alice$/, 'Starling issued a username');
  if (!username || !password) return;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-coturn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Relay ports from a range of their own, so parallel runs rarely meet.
  const minPort = 50000 + Math.floor(Math.random() * 150) * 100;
  const turnserver = spawn(
    'turnserver',
    [
      '-n', // no configuration file
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${turnPort}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${DOMAIN}`,
      `--min-port=${minPort}`,
      `--max-port=${minPort + 99}`,
      `--userdb=${path.join(dir, 'turndb')}`,
      `--pidfile=${path.join(dir, 'turnserver.pid')}`,
      '--allow-loopback-peers', // the two test clients relay to each other on 127.0.0.1
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--log-file=stdout',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  turnserver.stdout.on('data', (d: Buffer) => (log += d.toString()));
  turnserver.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => turnserver.once('exit', () => resolve()));
  t.teardown(() => terminate(turnserver, exited));
  await waitForPort('turnserver', turnPort, 15_000, () => turnserver.exitCode !== null).catch((err: Error) => {
    throw new Error(`${err.message}\n${log}`);
  });

  const good = await uclient(turnPort, username, password);
  t.equal(good.code, 0, 'an allocation with the issued username and password succeeds');
  t.match(good.output, /tot_recv_msgs=[1-9]/, 'data went through the relay');
  if (good.code !== 0) t.comment(`uclient:\n${good.output}\nturnserver:\n${log}`);

  const wrong = await uclient(turnPort, username, `${password.slice(0, -4)}AAA=`);
  t.not(wrong.code, 0, 'a wrong password is refused');
  t.match(wrong.output, /Cannot complete Allocation/);

  const otherSecret = await uclient(turnPort, `${Math.floor(Date.now() / 1000) + 600}:alice`, password);
  t.not(otherSecret.code, 0, 'the password does not fit another username');
});
