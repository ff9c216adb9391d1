// Import from Prosody: accounts made on Debian's Prosody (0.12) and filled by real clients
// (roster, subscription, vCard, PEP item, private XML, archived messages) are exported by Prosody's own prosody-migrator to its xep0227
// store (one file per account, SCRAM-SHA-1 keys) and imported with `starling import`; the users
// log in to Starling with their old passwords and find it all.
//
// prosody-migrator 0.12 has no option for where the xep0227 store writes: the store writes to
// Prosody's data path, which the migrator takes from the CFG_DATADIR its script sets. The run
// uses a copy of Debian's script with that one line pointing at its own directory.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asUser, handOver, selfSigned, which } from '../helpers/daemon.js';
import { DOMAIN, USERS, checkExtras, importAndCheck, populateExtras, populatePeer } from '../helpers/xep0227.js';
import { freePort, needProsody, prosodyVersion, startProsody } from './prosody.js';

if (needProsody(t, 'import of Prosody’s XEP-0227 export (conformance/prosody/xep0227.test.ts)')) {
  t.comment(`prosody ${prosodyVersion()}`);
  t.test('accounts exported by prosody-migrator log in to Starling and find their data', async (t) => {
    const migrator = which('prosody-migrator');
    if (!migrator) {
      t.fail('prosody-migrator is missing (Debian package prosody)');
      return;
    }
    const work = mkdtempSync(path.join(os.tmpdir(), 'starling-prosody-227-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const { cert, key } = selfSigned(work, DOMAIN);
    const [c2sPort, s2sPort] = [await freePort(), await freePort()];
    const prosody = await startProsody(t, {
      domain: DOMAIN,
      c2sPort,
      s2sPort,
      routes: {},
      secureAuth: false,
      certificate: cert,
      key,
      users: USERS,
      extraModules: ['pep', 'private', 'mam'],
    });
    t.teardown(() => {
      if (!t.passing()) t.comment(`prosody.log (tail):\n${prosody.log().split('\n').slice(-60).join('\n')}`);
    });
    await populatePeer(t, c2sPort);
    await populateExtras(t, c2sPort);

    // Prosody's internal store writes each change at once: the migrator reads it while Prosody runs.
    const out = path.join(work, 'export');
    mkdirSync(out);
    const script = path.join(work, 'prosody-migrator');
    writeFileSync(script, readFileSync(migrator, 'utf8').replace(/^CFG_DATADIR=.*$/m, `CFG_DATADIR=${JSON.stringify(out)};`));
    const stores = ['accounts', 'roster', 'vcard', 'private', 'pep-pubsub', 'archive-archive'].map((s) => JSON.stringify(s)).join(', ');
    writeFileSync(
      path.join(work, 'migrator.cfg.lua'),
      `input { hosts = { [${JSON.stringify(DOMAIN)}] = { ${stores} } }; type = "internal"; path = ${JSON.stringify(path.join(prosody.dir, 'data'))}; }\n` +
        `output { type = "xep0227"; }\n`,
    );
    handOver(work, 'prosody');
    const lua = readFileSync(migrator, 'utf8')
      .split('\n')[0]!
      .replace(/^#!\s*(\/usr\/bin\/env\s+)?/, '');
    const [command, args] = asUser('prosody', [lua, script, '--config', path.join(work, 'migrator.cfg.lua'), 'input', 'output']);
    const run = spawnSync(command, args, { cwd: work, encoding: 'utf8', timeout: 30_000 });
    t.equal(run.status, 0, `prosody-migrator: ${run.stdout}${run.stderr}`);
    const files = readdirSync(out).filter((f) => f.endsWith('.xml'));
    t.same(files.sort(), [`alice@${DOMAIN}.xml`, `bob@${DOMAIN}.xml`], 'one file per account');
    const alice = readFileSync(path.join(out, `alice@${DOMAIN}.xml`), 'utf8');
    // Prosody writes the attributes in no fixed order.
    t.match(alice, /<scram-credentials\b(?=[^>]*xmlns=['"]urn:xmpp:pie:0#scram['"])(?=[^>]*mechanism=['"]SCRAM-SHA-1['"])/, 'with SCRAM-SHA-1 keys');
    t.notMatch(alice, /password=/, 'and no password');

    await importAndCheck(t, [out], (alice) => checkExtras(t, alice));
  });
}
