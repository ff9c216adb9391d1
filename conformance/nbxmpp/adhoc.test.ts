// Gajim's "Execute Command" against Starling's ad-hoc commands: nbxmpp's AdHoc module (Debian's
// python3-nbxmpp, the library Gajim is built on) lists the server's commands as an admin, runs
// get-online-users-num and add-user (its form filled in and submitted as Gajim does), and, as
// a user who is not an admin, sees no command and is refused with forbidden. The Python side is
// adhoc_commands.py; its RESULT lines are checked here. Skipped, with the reason, when
// /usr/bin/python3 cannot import nbxmpp, unless STARLING_REQUIRE_SERVICES=1 (then a failure).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { makeJid } from '../../src/jid.js';
import { needPythonModule, resultValues, runPython } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./adhoc_commands.py', import.meta.url));
const ADMIN = `boss@${DOMAIN}`;
const USER = `alice@${DOMAIN}`;

if (needPythonModule(t, 'nbxmpp', 'python3-nbxmpp', 'nbxmpp ad-hoc commands interop test (conformance/nbxmpp/adhoc.test.ts)')) {
  t.test('nbxmpp (Gajim) lists and runs the admin commands', async (t) => {
    const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'adhoc', 'admin_adhoc'], admins: [ADMIN] });
    for (const user of ['boss', 'alice']) await ts.addUser(user);
    const run = await runPython(
      SCRIPT,
      [
        '--port',
        String(ts.port),
        '--domain',
        DOMAIN,
        '--password',
        PASSWORD,
        '--admin',
        'boss',
        '--user2',
        'alice',
        '--new-user',
        'gajim',
        '--new-password',
        'made by nbxmpp',
        '--timeout',
        '30',
      ],
      50_000,
    );
    if (run.code !== 0) {
      t.fail(`nbxmpp ad-hoc scenario failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, {
        stdout: run.stdout,
        stderr: run.stderr.split('\n').slice(-150).join('\n'),
      });
      return;
    }
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    t.equal(resultValues(run, 'commands').get(ADMIN), '15', 'the admin sees the fifteen XEP-0133 commands');
    t.match(resultValues(run, 'listed').get(ADMIN), /add-user.*get-online-users-num/);
    t.equal(resultValues(run, 'onlineusersnum').get(ADMIN), '1', 'one session: the admin’s own');
    t.equal(resultValues(run, 'add_user_actions').get(ADMIN), 'cancel,complete', 'one stage: complete or cancel');
    t.equal(resultValues(run, 'add_user').get(ADMIN), 'completed');
    t.equal(resultValues(run, 'add_user_note').get(ADMIN), 'info');
    t.ok(await ts.server.core.accounts.exists(makeJid('gajim', DOMAIN)), 'the account exists');
    t.equal(resultValues(run, 'commands').get(USER), '0', 'a non-admin sees no command');
    t.equal(resultValues(run, 'refused').get(USER), 'forbidden');
  });
}
