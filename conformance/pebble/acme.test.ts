// Certificates by ACME against pebble, Let's Encrypt's test CA (Debian `pebble`): a `starling
// start` with [acme] obtains a certificate for its host, pebble really validating the HTTP-01
// challenge on Starling's HTTP listener; a direct TLS connection then gets it (chaining to
// pebble's root). A reload with a renew_before_days beyond the certificate's life renews it,
// and a new connection gets the new one from the same process. With pebble gone, the failure is
// one log line and the server runs on. Skipped when pebble is not installed; a failure under
// STARLING_REQUIRE_SERVICES=1.
import { lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { configDir, runStarling, startStarling, type RunningStarling } from '../../test/helpers/cli.js';
import { freePort, gate, which } from '../helpers/daemon.js';
import { startPebble } from './pebble.js';

const HOST = 'starling.test';

/** Resolves once the server's output has `count` lines matching `re`; with them. */
function logged(s: RunningStarling, re: RegExp, count = 1): Promise<string[]> {
  const lines = () =>
    s
      .output()
      .split('\n')
      .filter((l) => re.test(l));
  return new Promise((resolve) => {
    const check = () => {
      if (lines().length < count) return;
      s.child.stdout!.off('data', check);
      resolve(lines());
    };
    s.child.stdout!.on('data', check);
    check();
  });
}

/**
 * The certificate a direct TLS connection to `port` gets, its chain verified against `root`:
 * with SNI `HOST` (and its name checked), or with no SNI at all (the server's default).
 */
function peerCertificate(port: number, root: string, sni = true): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const options: tls.ConnectionOptions = sni ? { servername: HOST } : { checkServerIdentity: () => undefined };
    const socket = tls.connect({ host: '127.0.0.1', port, ca: root, ...options }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  });
}

t.test('certificates by ACME from pebble: obtained, served, renewed live', async (t) => {
  const missing = ['pebble', 'pebble-challtestsrv', 'openssl'].filter((c) => !which(c));
  if (!gate(t, 'ACME test against pebble (conformance/pebble/acme.test.ts)', missing.length ? `${missing.join(' and ')} not found (apt-get install pebble)` : undefined)) return;

  const httpPort = await freePort();
  const toml = (dir: string, pebble: { directory: string; caFile: string }, renewBeforeDays: number) => `data_dir = "${dir}/data"
modules_enabled = ["sasl", "ping", "disco"]
[hosts."${HOST}"]
[log]
format = "json"
[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }, { interfaces = ["127.0.0.1"], port = 0, direct_tls = true }]
[s2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
[http]
interfaces = ["127.0.0.1"]
port = ${httpPort}
https_interfaces = []
[acme]
enabled = true
directory = "${pebble.directory}"
ca_file = "${pebble.caFile}"
email = "admin@${HOST}"
renew_before_days = ${renewBeforeDays}
`;
  const { dir, config } = configDir(t, 'acme', () => '');
  const pebble = await startPebble(dir, httpPort);
  t.teardown(() => pebble.stop());
  writeFileSync(config, toml(dir, pebble, 30));

  const server = await startStarling(config, { cwd: dir });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const tlsPort = Number(/"port":(\d+),"tls":"direct","msg":"c2s listening"/.exec(server.output())?.[1]);
  const root = await pebble.root();

  const [obtained] = await logged(server, /"msg":"ACME: (certificate obtained|obtaining)/);
  t.match(obtained, /certificate obtained/, 'the first certificate is obtained');
  const first = await peerCertificate(tlsPort, root);
  t.match(first.issuer.CN, /^Pebble Intermediate CA/, 'a new connection gets the certificate pebble issued (verified against its root)');
  t.same(first.subjectaltname, `DNS:${HOST}`);
  const live = path.join(dir, 'data', 'certs', 'live', HOST);
  t.ok(lstatSync(path.join(live, 'fullchain.pem')).isSymbolicLink(), 'the Let\u2019s Encrypt layout: live/ links...');
  t.equal(readlinkSync(path.join(live, 'fullchain.pem')), `../../archive/${HOST}/fullchain1.pem`, '...to archive/');
  t.equal(statSync(path.join(live, 'privkey.pem')).mode & 0o077, 0, 'the key readable by its owner only');
  t.match(server.output(), /"method":"GET","route":"\/\.well-known\/acme-challenge\/","status":200/, 'pebble fetched the challenge from Starling');

  // Renewal: due at once with a renew_before_days beyond the certificate's life; the reload
  // applies it and orders the certificate again, in the same process.
  writeFileSync(config, toml(dir, pebble, 100_000));
  const r = runStarling(['reload', '--config', config], { cwd: dir });
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^changed in the file, applied live: acme\.renew_before_days$/m);
  const lines = await logged(server, /"msg":"ACME: (certificate obtained|obtaining)/, 2);
  t.match(lines[1], /certificate obtained/, 'renewed');
  const second = await peerCertificate(tlsPort, root);
  t.not(second.serialNumber, first.serialNumber, 'a new connection gets the renewed certificate');
  t.equal((await peerCertificate(tlsPort, root, false)).serialNumber, second.serialNumber, 'so does one sending no SNI (the default context)');
  t.match(second.issuer.CN, /^Pebble Intermediate CA/);
  t.equal(readlinkSync(path.join(live, 'fullchain.pem')), `../../archive/${HOST}/fullchain2.pem`);
  t.equal(readFileSync(path.join(live, 'fullchain.pem'), 'utf8').includes('BEGIN CERTIFICATE'), true);

  // The CA gone: one line, a retry later, and the server runs on.
  await pebble.stop();
  t.equal(runStarling(['reload', '--config', config], { cwd: dir }).code, 0);
  const failures = await logged(server, /"msg":"ACME: obtaining a certificate for starling\.test failed: .*; retrying in 60 s"/);
  t.notMatch(failures[0], /"stack"|    at /, 'one line, no stack trace');
  const status = runStarling(['status', '--config', config], { cwd: dir });
  t.equal(status.code, 0, 'still running');
  t.equal((await peerCertificate(tlsPort, root)).serialNumber, second.serialNumber, 'still serving the renewed certificate');
});
