// The control channel of a running server, from the command line: `starling start` as a process,
// the CLI commands as processes, and real clients that see their streams end.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Client } from '@xmpp/client';
import { ControlClient } from '../../src/control/client.js';
import type { SessionInfo } from '../../src/control/protocol.js';
import { PASSWORD, rawLogin, startClient, xmppClient, type TestClient } from '../helpers/clients.js';
import { configDir, loopbackServerToml, runStarling, startStarling } from '../helpers/cli.js';
import { addUsers, stopped } from '../helpers/control.js';

const SM = 'urn:xmpp:sm:3';
const { dir, config } = configDir(t, 'control', loopbackServerToml);
const dataDir = path.join(dir, 'data');
const starling = (args: string[], input?: string) => runStarling([...args, '--config', config], { cwd: dir, input });

/** An @xmpp/client session of `user` on `port`, and the stream error that ends it. */
async function client(t: Tap, port: number, user: string, resource: string): Promise<{ c: TestClient; error: Promise<{ condition: string; text: string }> }> {
  const xmpp: Client = xmppClient({ service: `xmpp://127.0.0.1:${port}`, domain: 'localhost', username: user, password: PASSWORD, resource });
  const error = new Promise<{ condition: string; text: string }>((resolve) => xmpp.on('error', (err: any) => err.condition && resolve(err)));
  const c = await startClient(xmpp);
  t.teardown(() => c.stop());
  return { c, error };
}
interface Tap {
  teardown(fn: () => unknown): void;
}

/** The sessions as the control channel lists them, asked in-process (no CLI run). */
async function sessions(): Promise<SessionInfo[]> {
  const control = (await ControlClient.connect(dataDir))!;
  try {
    return await control.request<SessionInfo[]>({ command: 'sessions' });
  } finally {
    control.close();
  }
}

await addUsers(config, PASSWORD, 'alice', 'bob', 'carol');
const server = await startStarling(config, { cwd: dir });
t.teardown(() => void server.child.kill('SIGKILL'));
const { port } = server;

t.test('the control socket: in the data directory, owner only', async (t) => {
  const stat = statSync(path.join(dataDir, 'control.sock'));
  t.ok(stat.isSocket());
  t.equal(stat.mode & 0o777, 0o600);
});

t.test('status', async (t) => {
  const { s } = await rawLogin(port, 'carol', 'desk');
  const r = starling(['status']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^starling \d+\.\d+\.\d+: running for \d+s/);
  t.match(r.out, /^hosts: localhost$/m);
  t.match(r.out, /^c2s: 1 connection, 1 session bound$/m);
  t.match(r.out, /^s2s: 0 incoming, 0 outgoing$/m);
  t.match(r.out, /^storage: sqlite \(sqlite:.*starling\.db\)$/m);
  t.match(r.out, /^redis: not used/m);
  s.close();
  await s.until(() => s.closed);
});

t.test('sessions lists each session; kick ends one with policy-violation and the reason', async (t) => {
  const { c, error } = await client(t, port, 'alice', 'phone');
  const { s: desk } = await rawLogin(port, 'alice', 'desk');
  desk.write(`<enable xmlns='${SM}' resume='true'/>`);
  await desk.element('enabled');
  let r = starling(['sessions', 'localhost']);
  t.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  t.equal(lines.length, 2, r.out);
  t.match(lines[0], /^alice@localhost\/desk\s+127\.0\.0\.1\s+\d{4}-\d\d-\d\dT\S+Z\s+tls unavailable sm:resumable csi:active$/);
  t.match(lines[1], /^alice@localhost\/phone\S*\s+127\.0\.0\.1\s+\S+\s+tls available sm:(off|on|resumable) csi:active$/);

  r = starling(['kick', c.jid, 'time', 'to', 'go']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, `ended ${c.jid}\n`);
  const kicked = await error;
  t.same([kicked.condition, kicked.text], ['policy-violation', 'time to go'], 'the client sees why');
  t.same(
    (await sessions()).map((s) => s.jid),
    ['alice@localhost/desk'],
    'one session left',
  );

  r = starling(['kick', 'alice@localhost']);
  t.equal(r.code, 0, r.err);
  t.equal(await desk.streamError(), 'policy-violation', 'a bare JID: every session');
  t.same(await sessions(), [], 'a session kept for resumption is not kept after a kick');
  const control = (await ControlClient.connect(dataDir))!;
  await t.rejects(control.request({ command: 'kick', jid: 'alice@localhost' }), { kind: 'request', message: 'alice@localhost has no session on this server' });
  control.close();
});

t.test('announce sends a headline from the host to every online session', async (t) => {
  const { c: bob } = await client(t, port, 'bob', 'phone');
  const { c: carol } = await client(t, port, 'carol', 'desk');
  const r = starling(['announce', 'localhost', 'maintenance', 'at', 'noon']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'sent to 2 sessions\n');
  for (const c of [bob, carol]) {
    const m = await c.next((el) => el.name === 'message' && el.attrs.type === 'headline');
    t.same([m.attrs.from, m.getChildText('body')], ['localhost', 'maintenance at noon'], `${c.jid} gets it from the host`);
  }
  const unknown = starling(['announce', 'example.org', 'hello']);
  t.equal(unknown.code, 1);
  t.match(unknown.err, /example\.org is not a host of this server/, 'an unknown host: one line');
  t.equal(starling(['announce', 'localhost']).code, 1, 'no message: a usage error');
});

t.test('reload: certificates again; what changed in the file is named; a broken file changes nothing', async (t) => {
  const original = readFileSync(config, 'utf8');
  t.teardown(() => writeFileSync(config, original));
  let r = starling(['reload']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'reloaded: certificates\nno other change in the configuration file\n');
  writeFileSync(config, `${original}\n[metrics]\nallow = ["127.0.0.1"]\n`);
  r = starling(['reload']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^changed in the file, taking effect after a restart: metrics$/m, 'the changed setting is named');
  writeFileSync(config, `${original}\n[c2s]\nnope = 1\n`);
  r = starling(['reload']);
  t.equal(r.code, 1);
  t.match(r.err, /redefine/, 'a file that does not validate: its problem, nothing sent to the server');
  t.notMatch(r.err, /    at /, 'no stack trace');
  writeFileSync(config, original);
  t.equal(starling(['reload']).out, 'reloaded: certificates\nno other change in the configuration file\n', 'the server runs on as before');
});

t.test('passwd ends the sessions (<reset/>), unless --keep-sessions', async (t) => {
  const { s: one } = await rawLogin(port, 'bob', 'one');
  const { error } = await client(t, port, 'bob', 'two');
  let r = starling(['passwd', 'bob@localhost'], 'a brand new password\n');
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'password of bob@localhost changed; 2 sessions ended\n');
  t.equal(await one.streamError(), 'reset');
  t.equal((await error).condition, 'reset');
  await t.rejects(rawLogin(port, 'bob', 'three'), /authentication failed/, 'the old password is refused');
  const { s: again } = await rawLogin(port, 'bob', 'three', 'a brand new password');

  r = starling(['passwd', 'bob@localhost', '--keep-sessions'], `${PASSWORD}\n`);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'password of bob@localhost changed\n');
  t.same(
    (await sessions()).map((s) => s.jid),
    ['bob@localhost/three'],
    'the session stays',
  );
  again.close();
});

t.test('deluser ends the sessions at once (<not-authorized/>)', async (t) => {
  const { error } = await client(t, port, 'carol', 'laptop');
  const r = starling(['deluser', 'carol@localhost']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'deleted carol@localhost; 1 session ended\n');
  t.equal((await error).condition, 'not-authorized');
  await t.rejects(rawLogin(port, 'carol', 'again'), /authentication failed/, 'the account is gone');
});

t.test('stops cleanly', async (t) => {
  t.equal(await stopped(server), 0);
});
