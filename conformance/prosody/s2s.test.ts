// Federation interop with Prosody (Debian's package): Starling serves starling.localhost,
// Prosody prosody.localhost, both on loopback with their own ports and static routes to each
// other (Starling: [s2s] routes; Prosody: mod_test_s2s_routes.lua). Two runs:
//
// 1. dialback: both servers with self-signed certificates, s2s_secure_auth off on both sides,
//    so each authenticates to the other with dialback (XEP-0220) over STARTTLS;
// 2. certificates: both certificates from a test CA that both trust, secure_auth on both
//    sides: SASL EXTERNAL both ways.
//
// In each run, both directions: messages (to full and bare JIDs), subscriptions with roster
// pushes and presence (including a change of presence), IQ round trips (software version of
// the other server, vCard of a user on the other server, ping), and errors coming back (a
// message to an account the other server does not have). Skipped (with the reason) when
// Prosody is not installed, a failure under STARLING_REQUIRE_SERVICES=1. The scenario itself is
// conformance/helpers/federation.ts, shared with conformance/ejabberd.
import t, { type Test } from 'tap';
import { PASSWORD, STARLING, bothDirections, certificatesFor, connectBoth, startStarlingFor, type Mode } from '../helpers/federation.js';
import { freePort, needProsody, prosodyVersion, startProsody } from './prosody.js';

const PROSODY = 'prosody.localhost';

async function run(t: Test, mode: Mode): Promise<void> {
  const [prosodyC2s, prosodyS2s] = [await freePort(), await freePort()];
  const { peer: prosodyCert, caFile, starling: starlingTls } = certificatesFor(t, mode, PROSODY);

  const starling = await startStarlingFor(t, PROSODY, prosodyS2s, starlingTls);
  const prosody = await startProsody(t, {
    domain: PROSODY,
    c2sPort: prosodyC2s,
    s2sPort: prosodyS2s,
    routes: { [STARLING]: ['127.0.0.1', starling.s2sPort] },
    secureAuth: mode === 'certificates',
    certificate: prosodyCert.cert,
    key: prosodyCert.key,
    caFile,
    users: { bob: PASSWORD, carol: PASSWORD },
  });
  // On failure, what Prosody said.
  t.teardown(() => {
    if (!t.passing()) t.comment(`prosody.log (tail):\n${prosody.log().split('\n').slice(-80).join('\n')}`);
  });

  const setup = await connectBoth(t, starling, { name: 'Prosody', domain: PROSODY, c2sPort: prosodyC2s, software: 'Prosody' });
  bothDirections(t, setup, {
    mode,
    peerChecks(t) {
      const log = prosody.log();
      if (mode === 'certificates') {
        t.match(log, /Accepting SASL EXTERNAL identity from starling\.localhost/, 'Prosody accepted Starling’s certificate (SASL EXTERNAL)');
        t.match(log, /SASL EXTERNAL with starling\.localhost succeeded/, 'and authenticated to Starling with it');
      } else {
        t.match(log, /verified dialback key\.\.\. it is valid/, 'Prosody confirmed Starling’s dialback key as the authoritative server... ');
        t.notMatch(log, /SASL EXTERNAL with starling\.localhost succeeded/, 'no SASL EXTERNAL with self-signed certificates');
      }
    },
  });
}

if (needProsody(t, 'Prosody federation interop (conformance/prosody/s2s.test.ts)')) {
  t.comment(`prosody ${prosodyVersion()}`);
  for (const mode of ['dialback', 'certificates'] as const) {
    t.test(mode === 'dialback' ? 'dialback between self-signed certificates' : 'SASL EXTERNAL with certificates from a shared test CA', (t) => run(t, mode));
  }
}
