// Import from ejabberd: accounts made on Debian's ejabberd (23.01) and filled by real clients
// (roster, subscription, vCard) are exported by `ejabberdctl export_piefxis DIR` (an index
// file including one file per host; plaintext passwords as ejabberd stores them by default, or
// SCRAM keys with auth_password_format: scram)
// and imported with `starling import`; the users log in to Starling with their old passwords
// (now SCRAM keys) and find their rosters and vCard.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, handOver, selfSigned } from '../helpers/daemon.js';
import { DOMAIN, USERS, importAndCheck, populatePeer } from '../helpers/xep0227.js';
import { ejabberdVersion, needEjabberd, startEjabberd } from './ejabberd.js';

if (needEjabberd(t, 'import of ejabberd’s XEP-0227 export (conformance/ejabberd/xep0227.test.ts)')) {
  t.comment(`ejabberd ${ejabberdVersion()}`);
  for (const format of ['plain', 'scram'] as const) {
    t.test(`accounts exported by ejabberdctl export_piefxis (auth_password_format: ${format}) log in to Starling and find their data`, async (t) => {
      const work = mkdtempSync(path.join(os.tmpdir(), 'starling-ejabberd-227-'));
      t.teardown(() => rmSync(work, { recursive: true, force: true }));
      const { cert, key } = selfSigned(work, DOMAIN);
      const [c2sPort, s2sPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
      const extraYaml = `auth_password_format: ${format}\n`;
      const ejabberd = await startEjabberd(t, { domain: DOMAIN, c2sPort, s2sPort, dnsPort, certificate: cert, key, users: USERS, extraYaml });
      t.teardown(() => {
        if (!t.passing()) t.comment(`ejabberd.log (tail):\n${ejabberd.log().split('\n').slice(-60).join('\n')}`);
      });
      await populatePeer(t, c2sPort);

      const out = path.join(work, 'export');
      mkdirSync(out);
      handOver(work, 'ejabberd');
      const exported = await ejabberd.ctl('export_piefxis', out);
      t.equal(exported.code, 0, `ejabberdctl export_piefxis: ${exported.output}`);
      const files = readdirSync(out).filter((f) => f.endsWith('.xml'));
      t.ok(files.length >= 2, `an index and a file per host: ${files.join(', ')}`);
      const index = files.find((f) => /xi:include|XInclude/.test(readFileSync(path.join(out, f), 'utf8')));
      t.ok(index, 'one of them includes the others (XInclude)');
      if (!index) return;
      const host = readFileSync(
        path.join(
          out,
          files.find((f) => f !== index)!,
        ),
        'utf8',
      );
      if (format === 'plain') t.match(host, /password=/, 'plaintext passwords (ejabberd’s default): Starling makes SCRAM keys of them');
      else t.match(host, /<scram-credentials xmlns=.urn:xmpp:pie:0#scram. mechanism=.SCRAM-SHA-1.>/, 'SCRAM-SHA-1 keys (ejabberd encodes them twice)');

      await importAndCheck(t, [path.join(out, index)]);
    });
  }
}
