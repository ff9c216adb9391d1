// Interop with slixmpp's MUC plugin (xep_0045, Debian's python3-slixmpp): one client creates and
// configures a room (join_muc_wait, get_room_config, set_room_config), a second enters, both
// exchange groupchat messages, the subject changes, the second leaves. The Python side is
// muc_groupchat.py; its RESULT lines are checked here. Skipped, with the reason, when
// /usr/bin/python3 cannot import slixmpp, unless STARLING_REQUIRE_SERVICES=1 (then a failure).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./muc_groupchat.py', import.meta.url));
const ROOM = `interop@conference.${DOMAIN}`;

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp MUC interop test (conformance/slixmpp/muc.test.ts)')) {
  t.test('slixmpp xep_0045 creates a room, two clients chat in it', async (t) => {
    const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'muc'] });
    for (const user of ['alice', 'bob']) await ts.addUser(user);
    const run = await runPython(
      SCRIPT,
      ['--port', String(ts.port), '--domain', DOMAIN, '--password', PASSWORD, '--user1', 'alice', '--user2', 'bob', '--room', ROOM, '--timeout', '30', '--debug'],
      50_000,
    );
    if (run.code !== 0) {
      t.fail(`slixmpp MUC scenario failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, {
        stdout: run.stdout,
        stderr: run.stderr.split('\n').slice(-150).join('\n'),
      });
      return;
    }
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    const codes = resultValues(run, 'selfcodes');
    t.equal(codes.get(`alice@${DOMAIN}`), '110,201', 'the creator saw 110 and 201');
    t.equal(codes.get(`bob@${DOMAIN}`), '110', 'the second occupant saw 110');
    const chats = resultValues(run, 'groupchat');
    for (const user of ['alice', 'bob']) {
      const got = chats.get(`${user}@${DOMAIN}`) ?? '';
      t.match(got, /^Alice:Hello_room,_from_slixmpp_alice_❤_<&>\|Bob:And_hello_from_bob_é$/, `${user} got both messages, in order, from room/nick`);
    }
  });
}
