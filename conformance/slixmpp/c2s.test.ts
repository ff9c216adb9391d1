// Interop with slixmpp (Debian's python3-slixmpp): two slixmpp clients log in over STARTTLS with
// SCRAM, send initial presence and exchange messages (bare -> full and full -> full JIDs), checking
// 'from' and body on each side. The Python side is c2s_scram_messages.py; it prints RESULT lines
// that are checked here. Skipped, with the reason, when /usr/bin/python3 cannot import slixmpp,
// unless STARLING_REQUIRE_SERVICES=1, where that is a failure.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runPython, type PythonRun } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./c2s_scram_messages.py', import.meta.url));
const RUN_TIMEOUT_MS = 45_000;

/** On failure, what the script said: its FAIL line and the tail of slixmpp's debug log (the XML). */
function diagnostics(run: PythonRun) {
  return { stdout: run.stdout, stderr: run.stderr.split('\n').slice(-150).join('\n') };
}

async function scenario(port: number, users: [string, string], extra: string[]): Promise<PythonRun> {
  return runPython(
    SCRIPT,
    ['--port', String(port), '--domain', DOMAIN, '--password', PASSWORD, '--user1', users[0], '--user2', users[1], '--timeout', '20', '--debug', ...extra],
    RUN_TIMEOUT_MS,
  );
}

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp interop test (conformance/slixmpp/c2s.test.ts)')) {
  t.test('slixmpp logs in with SCRAM over STARTTLS and exchanges messages', async (t) => {
    const ts = await startTestServer(t);
    const runs: [string, [string, string]][] = [
      ['SCRAM-SHA-256', ['alice', 'bob']],
      ['SCRAM-SHA-1', ['carol', 'dave']],
    ];
    for (const [mechanism, users] of runs) {
      t.test(mechanism, async (t) => {
        for (const user of users) await ts.addUser(user);
        // --channel-binding=none (the default): slixmpp 1.8 only knows tls-unique, so it is told it
        // has no channel binding and sends the gs2 flag 'n' (see the script's docstring).
        const run = await scenario(ts.port, users, ['--mechanism', mechanism]);
        if (run.code !== 0) {
          t.fail(`slixmpp scenario failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, diagnostics(run));
          return;
        }
        t.match(run.stdout, /^OK$/m, 'the script reports success');
        const mechanisms = resultValues(run, 'mechanism');
        const tlsVersions = resultValues(run, 'tls');
        const flags = resultValues(run, 'cbflag');
        for (const user of users) {
          const jid = `${user}@${DOMAIN}`;
          t.equal(mechanisms.get(jid), mechanism, `${jid} authenticated with ${mechanism} (printed by slixmpp)`);
          t.match(tlsVersions.get(jid), /^TLSv1\.[23]$/, `${jid} was on TLS (STARTTLS) when it authenticated`);
          t.equal(flags.get(jid), 'n', `${jid} sent the gs2 flag n`);
        }
        t.match(run.stdout, new RegExp(`^${users[1]}: received .* from ${users[0]}@${DOMAIN}/slix-a$`, 'm'), 'first message arrived with the full JID');
        t.match(run.stdout, new RegExp(`^${users[0]}: received .* from ${users[1]}@${DOMAIN}/slix-b$`, 'm'), 'reply arrived with the full JID');
      });
    }
  });

  // slixmpp as shipped, no mechanism chosen: its -PLUS mechanisms only know tls-unique (undefined
  // over TLS 1.3, not offered by Starling), and its plain SCRAM then sends the gs2 flag 'y', which a
  // server offering -PLUS rejects as a downgrade (RFC 5802 section 6). It must still get in, within
  // the per-IP failure limit, by falling back to PLAIN over TLS. Own server: own failure counter.
  t.test('stock slixmpp without a chosen mechanism still logs in and exchanges messages', async (t) => {
    const ts = await startTestServer(t);
    const users: [string, string] = ['erin', 'frank'];
    for (const user of users) await ts.addUser(user);
    const run = await scenario(ts.port, users, ['--mechanism', 'any', '--channel-binding', 'stock']);
    if (run.code !== 0) {
      t.fail(`stock slixmpp scenario failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, diagnostics(run));
      return;
    }
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    const mechanisms = resultValues(run, 'mechanism');
    const failed = resultValues(run, 'failed');
    for (const user of users) {
      const jid = `${user}@${DOMAIN}`;
      t.ok(mechanisms.get(jid), `${jid} authenticated`);
      t.comment(`stock slixmpp: ${jid} authenticated with ${mechanisms.get(jid)} after failed attempts: ${failed.get(jid)}`);
    }
  });
}
