// Interop with slixmpp's pubsub plugins (xep_0060, xep_0163, xep_0084; Debian's python3-slixmpp)
// against PEP: an OMEMO device list published with publish-options access_model=open and fetched
// by a client that is not a contact, an avatar (data and metadata) fetched the same way, and a
// publish whose options differ from the node's refused with precondition-not-met. The Python
// side is pep_omemo.py; its RESULT lines are checked here. Skipped, with the reason, when
// /usr/bin/python3 cannot import slixmpp, unless STARLING_REQUIRE_SERVICES=1 (then a failure).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { DOMAIN, PASSWORD, startTestServer } from '../../test/helpers/harness.js';
import { needPythonModule, resultValues, runScenario } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./pep_omemo.py', import.meta.url));

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp PEP interop test (conformance/slixmpp/pep.test.ts)')) {
  t.test('slixmpp publishes an OMEMO device list and an avatar; a stranger fetches them', async (t) => {
    const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'pubsub'] });
    for (const user of ['alice', 'bob']) await ts.addUser(user);
    const run = await runScenario(t, 'slixmpp PEP scenario', SCRIPT, { port: ts.port, domain: DOMAIN, password: PASSWORD }, ['--timeout', '30', '--debug'], 50_000);
    if (!run) return;
    t.match(run.stdout, /^OK$/m, 'the script reports success');
    t.equal(resultValues(run, 'devices').get(`bob@${DOMAIN}`), '31415,27182', 'bob fetched both OMEMO device ids');
    t.equal(resultValues(run, 'avatar').get(`bob@${DOMAIN}`), '23', 'and the avatar, byte for byte');
    t.equal(resultValues(run, 'precondition').get(`alice@${DOMAIN}`), 'precondition-not-met', 'differing publish-options are refused');
  });
}
