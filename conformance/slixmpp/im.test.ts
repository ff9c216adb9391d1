// Interop with slixmpp's instant-messaging basics (Debian's python3-slixmpp): roster get/set and
// pushes, mutual presence subscription, presence show/status/unavailable, offline messages with
// XEP-0203 delay, and a subscription request made while the contact was offline and delivered at
// his next login (RFC 6121, XEP-0160). The Python side is im_flows.py; it stops at the first
// failed check with a FAIL line quoting the XML, and prints RESULT lines checked here. Skipped,
// with the reason, when /usr/bin/python3 cannot import slixmpp, unless STARLING_REQUIRE_SERVICES=1
// (then a failure).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./im_flows.py', import.meta.url));
const SCRIPT_TIMEOUT_S = 60;

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp IM interop test (conformance/slixmpp/im.test.ts)')) {
  t.test('slixmpp: roster, subscriptions, presence and offline messages', async (t) => {
    const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm'] });
    for (const user of ['alice', 'bob', 'carol']) await ts.addUser(user);
    const run = await runPython(
      SCRIPT,
      [
        '--port',
        String(ts.port),
        '--domain',
        DOMAIN,
        '--password',
        PASSWORD,
        '--user1',
        'alice',
        '--user2',
        'bob',
        '--user3',
        'carol',
        '--timeout',
        String(SCRIPT_TIMEOUT_S),
        '--debug',
      ],
      (SCRIPT_TIMEOUT_S + 20) * 1000,
    );
    const passed = [...run.stdout.matchAll(/^PASS (.*)$/gm)].map((m) => m[1]);
    for (const step of passed) t.comment(`slixmpp step passed: ${step}`);
    if (run.code !== 0) {
      t.fail(`slixmpp IM scenario failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, {
        stdout: run.stdout,
        stderr: run.stderr.split('\n').slice(-150).join('\n'),
      });
      return;
    }
    t.equal(passed.length, 5, 'all five steps passed');
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    const rosters = resultValues(run, 'roster');
    t.equal(rosters.get(`alice@${DOMAIN}`), `bob@${DOMAIN}:both`, "alice's roster: bob, both ways");
    t.equal(rosters.get(`bob@${DOMAIN}`), `alice@${DOMAIN}:both,carol@${DOMAIN}:from`, "bob's roster: alice both ways, carol subscribed to him");
    t.equal(rosters.get(`carol@${DOMAIN}`), `bob@${DOMAIN}:to`, "carol's roster: subscribed to bob");
    t.equal(resultValues(run, 'offline').get(`bob@${DOMAIN}`), '2', 'bob got both offline messages, in order');
    t.equal(resultValues(run, 'delay').get(`bob@${DOMAIN}`), DOMAIN, 'with a delay from the server');
    t.equal(resultValues(run, 'pending').get(`bob@${DOMAIN}`), `carol@${DOMAIN}`, "carol's request reached bob at login");
  });
}
