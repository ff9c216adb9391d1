// Interop with slixmpp's file transfer plugins (Debian's python3-slixmpp): xep_0363 uploads a file
// over HTTPS (the server's self-signed certificate trusted explicitly) and a second client
// downloads it by the URL; two clients transfer 1 MiB through the XEP-0065 proxy with xep_0065.
// The Python side is file_transfer.py. Skipped, with the reason, when /usr/bin/python3 cannot
// import slixmpp, unless STARLING_REQUIRE_SERVICES=1 (then a failure).
import path from 'node:path';
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./file_transfer.py', import.meta.url));
const SCRIPT_TIMEOUT_S = 60;
const SIZE = 1 << 20;

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp file transfer interop test (conformance/slixmpp/file-transfer.test.ts)')) {
  t.test('slixmpp: HTTP upload and download, 1 MiB through the SOCKS5 proxy', async (t) => {
    const ts = await startTestServer(t, {
      modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'http_upload', 'proxy65'],
      // "proxy.localhost" may not resolve here: the streamhost names the loopback address.
      modules: { proxy65: { interfaces: ['127.0.0.1'], port: 0, public_host: '127.0.0.1' } },
    });
    for (const user of ['alice', 'bob']) await ts.addUser(user);
    const run = await runPython(
      SCRIPT,
      [
        ...['--port', String(ts.port), '--domain', DOMAIN, '--password', PASSWORD, '--user1', 'alice', '--user2', 'bob'],
        ...['--cafile', path.join(ts.dataDir, 'certs', `${DOMAIN}.crt`), '--size', String(SIZE), '--timeout', String(SCRIPT_TIMEOUT_S), '--debug'],
      ],
      (SCRIPT_TIMEOUT_S + 20) * 1000,
    );
    const passed = [...run.stdout.matchAll(/^PASS (.*)$/gm)].map((m) => m[1]);
    for (const step of passed) t.comment(`slixmpp step passed: ${step}`);
    if (run.code !== 0) {
      t.fail(`slixmpp file transfer failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, {
        stdout: run.stdout,
        stderr: run.stderr.split('\n').slice(-150).join('\n'),
      });
      return;
    }
    t.same(passed, ['upload', 'bytestream'], 'both steps passed');
    t.equal(resultValues(run, 'upload').get(`bob@${DOMAIN}`), '300000', 'bob downloaded the uploaded bytes');
    t.equal(resultValues(run, 'bytestream').get(`bob@${DOMAIN}`), String(SIZE), 'bob received 1 MiB through the proxy');
  });
}
