// Interop with nbxmpp, Gajim's XMPP library (Debian's python3-nbxmpp), against PEP, driven the
// way Gajim drives it (nbxmpp.client.Client on a GLib main loop, entity capabilities with +notify):
// OMEMO device lists and bundles published by two resources of one account (one bundle through
// nbxmpp's precondition-not-met / reconfigure path) and fetched by a client that is not a contact,
// and bookmarks 2 (XEP-0402) stored and retracted by one resource, notified to and read by the
// other. The Python side is gajim_pep.py; its RESULT lines are checked here. Skipped, with the
// reason, when /usr/bin/python3 cannot import nbxmpp, unless STARLING_REQUIRE_SERVICES=1.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runScenario } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./gajim_pep.py', import.meta.url));

if (needPythonModule(t, 'nbxmpp', 'python3-nbxmpp', 'nbxmpp PEP interop test (conformance/nbxmpp/pep.test.ts)')) {
  t.test('nbxmpp publishes OMEMO device lists and bundles and bookmarks 2 as Gajim does', async (t) => {
    const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'pubsub', 'private', 'bookmarks'] });
    for (const user of ['alice', 'bob']) await ts.addUser(user);
    const run = await runScenario(t, 'nbxmpp PEP scenario', SCRIPT, { port: ts.port, domain: DOMAIN, password: PASSWORD }, ['--timeout', '30', '--debug'], 50_000);
    if (!run) return;
    const alice = `alice@${DOMAIN}`;
    const bob = `bob@${DOMAIN}`;
    const rooms = [`garden@conference.${DOMAIN}`, `kitchen@conference.${DOMAIN}`];
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    t.equal(
      resultValues(run, 'account_features').get(alice),
      'http://jabber.org/protocol/pubsub#publish-options,http://jabber.org/protocol/pubsub#config-node-max,urn:xmpp:bookmarks:1#compat',
      'the account advertises what Gajim and Converse.js look for before using Bookmarks 2',
    );
    t.equal(resultValues(run, 'devices').get(bob), '1234567,7654321', 'the stranger fetched both OMEMO device ids');
    t.equal(resultValues(run, 'bundles').get(bob), '1,2', 'and both bundles, the reconfigured one included');
    t.equal(resultValues(run, 'bookmarks').get(`${alice}/phone`), rooms.join(','), 'the second resource read both bookmarks');
    t.equal(resultValues(run, 'retracted').get(`${alice}/phone`), rooms[0], 'and was notified of the retraction');
    t.equal(resultValues(run, 'after_retract').get(`${alice}/phone`), rooms[1], 'after which one bookmark is left');
    t.equal(resultValues(run, 'stranger_bookmarks').get(bob), 'not-allowed', 'a stranger cannot read the bookmarks (whitelist)');
  });
}
