// The `starling` command, run as a real process.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { RawStream } from '../helpers/clients.js';
import { LOOPBACK_HTTP_TOML, configDir, runStarling, startStarling } from '../helpers/cli.js';

const { dir, config } = configDir(
  t,
  'cli',
  (dir) => `data_dir = "${dir}/data"
[log]
format = "json"
[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
[accounts]
min_password_length = 8
${LOOPBACK_HTTP_TOML}`,
);
const passwordFile = path.join(dir, 'password');
writeFileSync(passwordFile, 'a good password\n');

/** The command run in the temporary directory. */
const starling = (args: string[], input?: string) => runStarling(args, { cwd: dir, input });

t.test('check: a misspelt key prints its path and exits 1', async (t) => {
  const bad = path.join(dir, 'bad.toml');
  writeFileSync(bad, '[storage]\ndrivr = "sqlite"\n');
  const r = starling(['check', '--config', bad]);
  t.equal(r.code, 1);
  t.match(r.err, /storage\.drivr: unknown key/);
  t.match(r.err, /bad\.toml/);
});

t.test('check: a good configuration prints OK', async (t) => {
  const r = starling(['check', '--config', config]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^OK/m);
  t.match(r.out, /self-signed one will be generated/);
});

t.test('account commands', async (t) => {
  let r = starling(['adduser', 'Alice@localhost', '--password-file', passwordFile, '--config', config]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /created alice@localhost/, 'the username is prepared (case-mapped)');
  r = starling(['adduser', 'bob@localhost', '--config', config], 'another password\n');
  t.equal(r.code, 0, `password from standard input: ${r.err}`);
  r = starling(['adduser', 'alice@localhost', '--password-file', passwordFile, '--config', config]);
  t.equal(r.code, 1);
  t.match(r.err, /exists already/);
  r = starling(['adduser', 'carol@localhost', '--config', config], 'short\n');
  t.equal(r.code, 1);
  t.match(r.err, /at least 8 characters/);
  r = starling(['adduser', 'dave@elsewhere.example', '--config', config], 'long enough password\n');
  t.equal(r.code, 1);
  t.match(r.err, /not a host of this server/);
  r = starling(['listusers', 'localhost', '--config', config]);
  t.equal(r.out, 'alice\nbob\n');
  r = starling(['passwd', 'alice@localhost', '--config', config], 'a newer password\n');
  t.equal(r.code, 0, r.err);
  r = starling(['deluser', 'bob@localhost', '--config', config]);
  t.equal(r.code, 0, r.err);
  r = starling(['listusers', 'localhost', '--config', config]);
  t.equal(r.out, 'alice\n');
  r = starling(['deluser', 'bob@localhost', '--config', config]);
  t.equal(r.code, 1, 'deleting a missing account fails');
});

t.test('help and version', async (t) => {
  t.match(starling(['--help']).out, /commands:/);
  t.match(starling(['adduser', '--help']).out, /usage: starling adduser/);
  t.match(starling(['version']).out, /^starling \d+\.\d+\.\d+/);
  t.equal(starling(['frobnicate']).code, 1);
});

t.test('start prints where it listens, serves, and stops cleanly on SIGTERM', async (t) => {
  const { child, port, output } = await startStarling(config, { cwd: dir });
  t.match(output(), new RegExp(`"dataDir":"${dir}/data"`), 'the data directory is printed');
  const s = await RawStream.open(port);
  s.header();
  t.ok(await s.element('stream:features'), 'it serves XMPP');
  child.kill('SIGTERM');
  t.equal(await s.streamError(), 'system-shutdown');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  t.equal(code, 0, 'exit 0');
});
