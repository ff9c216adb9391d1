// Federation interop with ejabberd (Debian's package, 23.01 in Debian 12): Starling serves
// starling.localhost, ejabberd ejabberd.localhost, both on loopback with their own ports.
// Starling reaches ejabberd by a static route ([s2s] routes). ejabberd has no static routes: it
// finds starling.localhost through SRV records, asked of a DNS server this test runs on loopback
// (conformance/helpers/srv-dns.ts), the only name server in ejabberd's Erlang resolver
// configuration (see ejabberd.ts). Two runs:
//
// 1. dialback: both servers with self-signed certificates, Starling's secure_auth off and
//    ejabberd's mod_s2s_dialback on, so each authenticates to the other with dialback
//    (XEP-0220) over STARTTLS (required on both sides);
// 2. certificates: both certificates from a test CA that both trust (Starling [s2s] ca_files,
//    ejabberd s2s_cafile), Starling's secure_auth on and ejabberd without mod_s2s_dialback:
//    SASL EXTERNAL (XEP-0178) both ways.
//
// Each run goes through the scenario in conformance/helpers/federation.ts, both directions:
// messages, subscriptions and presence, IQ round trips (version, ping, vCard), errors. Skipped
// (with the reason) when ejabberd is not installed, a failure under STARLING_REQUIRE_SERVICES=1.
import t, { type Test } from 'tap';
import { freePort } from '../helpers/daemon.js';
import { PASSWORD, STARLING, bothDirections, certificatesFor, connectBoth, startStarlingFor, type Mode } from '../helpers/federation.js';
import { startSrvDns, type SrvRecord } from '../helpers/srv-dns.js';
import { ejabberdVersion, needEjabberd, startEjabberd } from './ejabberd.js';

const EJABBERD = 'ejabberd.localhost';

async function run(t: Test, mode: Mode): Promise<void> {
  const [c2sPort, s2sPort] = [await freePort(), await freePort()];
  const { peer: ejabberdCert, caFile, starling: starlingTls } = certificatesFor(t, mode, EJABBERD);

  const starling = await startStarlingFor(t, EJABBERD, s2sPort, starlingTls);
  // What ejabberd's resolver is told: Starling's STARTTLS s2s port, on 127.0.0.1 (an address
  // as the target, so ejabberd's address lookup needs no name service either).
  const zone = new Map<string, SrvRecord[]>([[`_xmpp-server._tcp.${STARLING}`, [{ priority: 0, weight: 0, port: starling.s2sPort, target: '127.0.0.1' }]]]);
  const dns = await startSrvDns(zone);
  t.teardown(() => dns.close());

  const ejabberd = await startEjabberd(t, {
    domain: EJABBERD,
    c2sPort,
    s2sPort,
    dnsPort: dns.port,
    certificate: ejabberdCert.cert,
    key: ejabberdCert.key,
    caFile,
    users: { bob: PASSWORD, carol: PASSWORD },
  });
  t.comment(`ejabberd started (node ${ejabberd.node}, c2s ${c2sPort}, s2s ${s2sPort}, DNS ${dns.port}/udp) in ${ejabberd.startMs} ms`);
  // On failure, what ejabberd said, and what it asked the DNS server.
  t.teardown(() => {
    if (!t.passing()) {
      t.comment(`DNS questions: ${JSON.stringify(dns.questions)}`);
      t.comment(`ejabberd.log (tail):\n${ejabberd.log().split('\n').slice(-80).join('\n')}`);
    }
  });

  const setup = await connectBoth(t, starling, { name: 'ejabberd', domain: EJABBERD, c2sPort, software: 'ejabberd' });
  bothDirections(t, setup, {
    mode,
    peerChecks(t) {
      const log = ejabberd.log();
      const how = mode === 'dialback' ? 'dialback' : 'EXTERNAL';
      t.ok(dns.questions.includes(`_xmpp-server._tcp.${STARLING} SRV`), `ejabberd found Starling through the test's DNS server: ${JSON.stringify([...new Set(dns.questions)])}`);
      t.match(log, new RegExp(`Accepted outbound s2s ${how} authentication ${EJABBERD} -> ${STARLING} \\(127\\.0\\.0\\.1\\)`), `ejabberd -> Starling: ${how} (ejabberd’s log)`);
      t.match(log, new RegExp(`Accepted inbound s2s ${how} authentication ${STARLING} -> ${EJABBERD}`), `Starling -> ejabberd: ${how} (ejabberd’s log)`);
      const failed = log.split('\n').filter((line) => /Failed (in|out)bound s2s/.test(line));
      if (mode === 'certificates') {
        t.same(failed, [], 'no failed s2s authentication in ejabberd’s log');
      } else {
        // ejabberd tries SASL EXTERNAL first both ways and logs its refusal as a failure before
        // dialback: it offers EXTERNAL to Starling and refuses Starling's self-signed
        // certificate; Starling does not offer EXTERNAL to ejabberd's self-signed one.
        const expected = [
          /Failed inbound s2s EXTERNAL authentication starling\.localhost -> ejabberd\.localhost \(127\.0\.0\.1\): self.signed certificate$/,
          /Failed outbound s2s EXTERNAL authentication ejabberd\.localhost -> starling\.localhost \(127\.0\.0\.1\): Authentication failed: Peer provided no SASL mechanisms/,
        ];
        const other = failed.filter((line) => !expected.some((re) => re.test(line)));
        t.same(other, [], 'ejabberd’s only failures are SASL EXTERNAL attempts before dialback');
        t.comment(`ejabberd before dialback:\n${failed.map((l) => l.replace(/^.*\) Failed/, 'Failed')).join('\n')}`);
      }
    },
  });
}

if (needEjabberd(t, 'ejabberd federation interop (conformance/ejabberd/s2s.test.ts)')) {
  t.comment(`ejabberd ${ejabberdVersion()}`);
  for (const mode of ['dialback', 'certificates'] as const) {
    t.test(mode === 'dialback' ? 'dialback between self-signed certificates' : 'SASL EXTERNAL with certificates from a shared test CA', (t) => run(t, mode));
  }
}
