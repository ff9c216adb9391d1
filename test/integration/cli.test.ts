// The `starling` command, run as a real process.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { RawStream } from '../helpers/clients.js';
import dgram from 'node:dgram';
import { closedPort, configDir, loopbackServicesToml, runOnTerminal, runStarling, runStarlingAsync, startStarling } from '../helpers/cli.js';
import { startSrvDns, type SrvRecord } from '../../conformance/helpers/srv-dns.js';

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
${loopbackServicesToml()}`,
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

t.test('adduser on a terminal asks for the password twice, without echo', async (t) => {
  const adduser = (user: string, again: string) =>
    runOnTerminal(
      ['adduser', `${user}@localhost`, '--config', config],
      [
        [/Password for [^:]+: $/, 'terminal password'],
        [/Retype it: $/, again],
      ],
      { cwd: dir },
    );
  let r = await adduser('erin', 'terminal password');
  t.equal(r.code, 0, r.out);
  t.match(r.out, /created erin@localhost/);
  t.notMatch(r.out, /terminal password/, 'not echoed');
  r = await adduser('frank', 'terminal passwore');
  t.equal(r.code, 1, r.out);
  t.match(r.out, /^starling adduser: the two passwords differ; nothing changed\r?$/m);
  const listed = starling(['listusers', 'localhost', '--config', config]);
  t.match(listed.out, /^erin$/m);
  t.notMatch(listed.out, /frank/, 'no account when the two differ');
  r = await runOnTerminal(
    ['passwd', 'erin@localhost', '--config', config],
    [
      [/New password for [^:]+: $/, 'a second password'],
      [/Retype it: $/, 'a second password'],
    ],
  );
  t.equal(r.code, 0, r.out);
  t.match(r.out, /password of erin@localhost changed/);
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
  t.match(output(), /"version":"\d+\.\d+\.\d+[^"]*","node":"v\d+[^"]*","dataDir".*"msg":"Starling is running"/, 'the version is printed');
  const s = await RawStream.open(port);
  s.header();
  t.ok(await s.element('stream:features'), 'it serves XMPP');
  child.kill('SIGTERM');
  t.equal(await s.streamError(), 'system-shutdown');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  t.equal(code, 0, 'exit 0');
});

t.test('check: a self-signed certificate generated at an earlier start is not announced again', async (t) => {
  const r = starling(['check', '--config', config]);
  t.equal(r.code, 0, r.err);
  t.notMatch(r.out, /will be generated/);
  t.match(r.out, new RegExp(`^note: localhost: the self-signed certificate ${dir}/data/certs/localhost\\.crt is used`, 'm'));
});

t.test('check: the DNS SRV records of each host; missing ones are warnings', async (t) => {
  const zone = new Map<string, SrvRecord[]>([
    ['_xmpp-client._tcp.example.org', [{ priority: 0, weight: 5, port: 5222, target: 'xmpp.example.org' }]],
    ['_xmpp-server._tcp.example.org', [{ priority: 0, weight: 5, port: 5269, target: 'xmpp.example.org' }]],
    ['_xmpps-server._tcp.example.org', [{ priority: 0, weight: 0, port: 0, target: '.' }]],
  ]);
  const dns = await startSrvDns(zone);
  t.teardown(() => dns.close());
  const { config: hosts } = configDir(
    t,
    'check-srv',
    (dir) => `data_dir = "${dir}/data"
[hosts."example.org"]
[hosts."chat.example.net"]
modules_enabled = ["ping", "disco"]
`,
  );
  const r = await runStarlingAsync(['check', '--dns-server', `127.0.0.1:${dns.port}`, '--config', hosts]);
  t.equal(r.code, 0, `warnings do not fail: ${r.err}`);
  t.match(r.out, /^OK/m);
  t.match(r.out, /^note: DNS SRV _xmpp-client\._tcp\.example\.org: xmpp\.example\.org:5222 /m);
  t.match(r.out, /^note: DNS SRV _xmpps-server\._tcp\.example\.org: not offered/m);
  t.match(r.out, /^warning: no DNS SRV record _xmpps-client\._tcp\.example\.org /m);
  t.notMatch(r.out, /warning: no DNS SRV record _xmpp-client\._tcp\.example\.org/);
  for (const service of ['_xmpp-client', '_xmpps-client', '_xmpp-server', '_xmpps-server']) {
    t.match(r.out, new RegExp(`^warning: no DNS SRV record ${service}\\._tcp\\.chat\\.example\\.net `, 'm'));
  }
  t.match(r.out, /^warning: chat\.example\.net: "sasl" is not in modules_enabled: no client can log in$/m);
  t.notMatch(r.out, /warning: example\.org: "sasl"/);
  t.equal(dns.questions.filter((q) => q.endsWith(' SRV')).length, 8, 'four services of two hosts asked');
});

t.test('check: no DNS at all is a note, within the timeout', async (t) => {
  const { config: hosts } = configDir(t, 'check-nodns', (dir) => `data_dir = "${dir}/data"\n[hosts."example.org"]\n`);
  // Nothing listens: the ICMP port unreachable answers at once.
  let r = await runStarlingAsync(['check', '--dns-server', `127.0.0.1:${await closedPort()}`, '--config', hosts]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^note: DNS SRV records not checked: no answer from DNS \(/m);
  t.notMatch(r.out, /warning: no DNS SRV/);
  // A server that never answers: the timeout (2 s, one try).
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  r = await runStarlingAsync(['check', '--dns-server', `127.0.0.1:${silent.address().port}`, '--config', hosts]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^note: DNS SRV records not checked: no answer from DNS \(ETIMEOUT\)/m);
  t.ok(r.ms < 15_000, `done in ${r.ms} ms`);
  r = starling(['check', '--dns-server', 'not-an-address', '--config', hosts]);
  t.equal(r.code, 1);
  t.equal(r.err, 'starling check: --dns-server not-an-address: not an IP address (or [IPv6]:port, IPv4:port)\n');
});
