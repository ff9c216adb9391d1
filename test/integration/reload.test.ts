// `starling reload` on a running `starling start`: the log level, the admins (global and per
// host) and module options with a reconfigure hook (blocking max_items) apply live, seen by
// real clients and in the server's own log; other changed settings are named as needing a
// restart; a second reload with the same file has nothing left to apply.
import { writeFileSync } from 'node:fs';
import t from 'tap';
import type { Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { PASSWORD, errorCondition, rawLogin, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { configDir, loopbackServerToml, runStarling, startStarling, type RunningStarling } from '../helpers/cli.js';
import { addUsers } from '../helpers/control.js';

interface Settings {
  level: string;
  admins: string[];
  maxItems: number;
  /** Admins of [hosts."localhost"], overriding the global ones. */
  hostAdmins?: string[];
  metricsAllow?: string[];
  /** accounts.max_sessions_per_user. */
  maxSessions?: number;
}

const toml = (dir: string, s: Settings) =>
  `admins = ${JSON.stringify(s.admins)}
modules_enabled = ["sasl", "ping", "disco", "roster", "presence", "blocking", "adhoc", "admin_adhoc"]
${loopbackServerToml(dir)
  .replace('[log]\n', `[log]\nlevel = "${s.level}"\n`)
  .replace('[accounts]\n', `[accounts]\n${s.maxSessions ? `max_sessions_per_user = ${s.maxSessions}\n` : ''}`)}
[modules.blocking]
max_items = ${s.maxItems}
${s.metricsAllow ? `[metrics]\nallow = ${JSON.stringify(s.metricsAllow)}\n` : ''}${s.hostAdmins ? `[hosts."localhost"]\nadmins = ${JSON.stringify(s.hostAdmins)}\n` : ''}`;

const initial: Settings = { level: 'info', admins: ['alice@localhost'], maxItems: 2 };
const { dir, config } = configDir(t, 'reload', (d) => toml(d, initial));
const reload = (s: Settings) => {
  writeFileSync(config, toml(dir, s));
  return runStarling(['reload', '--config', config], { cwd: dir });
};

await addUsers(config, PASSWORD, 'alice', 'bob', 'carol');
const server = await startStarling(config, { cwd: dir });
t.teardown(() => void server.child.kill('SIGKILL'));

/** Resolves once the server's output matches `re`. */
function logged(s: RunningStarling, re: RegExp): Promise<void> {
  if (re.test(s.output())) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!re.test(s.output())) return;
      s.child.stdout!.off('data', check);
      resolve();
    };
    s.child.stdout!.on('data', check);
  });
}

const clients = new Map<string, TestClient>();
async function client(user: string): Promise<TestClient> {
  const existing = clients.get(user);
  if (existing) return existing;
  const xmpp: Client = xmppClient({ service: `xmpp://127.0.0.1:${server.port}`, domain: 'localhost', username: user, password: PASSWORD, resource: 'r' });
  const c = await startClient(xmpp);
  t.teardown(() => c.stop());
  clients.set(user, c);
  return c;
}

let ids = 0;
async function iq(c: TestClient, payload: Element, to?: string): Promise<Element> {
  const id = `reload-${++ids}`;
  await c.send(xml('iq', { type: 'set', id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

/** Runs XEP-0133 get-online-users-num: 'result', or the error condition. */
async function adminCommand(user: string): Promise<string> {
  const reply = await iq(
    await client(user),
    xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'http://jabber.org/protocol/admin#get-online-users-num', action: 'execute' }),
    'localhost',
  );
  return reply.attrs.type === 'result' ? 'result' : (errorCondition(reply) ?? 'no condition');
}

/** Blocks `n` new JIDs in one request: 'result', or the error condition. */
async function block(user: string, n: number): Promise<string> {
  const items = Array.from({ length: n }, () => xml('item', { jid: `someone${++ids}@example.org` }));
  const reply = await iq(await client(user), xml('block', { xmlns: 'urn:xmpp:blocking' }, ...items));
  return reply.attrs.type === 'result' ? 'result' : (errorCondition(reply) ?? 'no condition');
}

t.test('before: info level, alice the admin, a blocklist of at most 2', async (t) => {
  const { s } = await rawLogin(server.port, 'carol', 'one');
  s.close();
  t.equal(await adminCommand('alice'), 'result');
  t.equal(await adminCommand('bob'), 'forbidden');
  t.equal(await block('bob', 3), 'not-allowed');
});

t.test('reload applies the log level, the admins and a module option live; metrics needs a restart', async (t) => {
  const changed: Settings = { level: 'debug', admins: ['bob@localhost'], maxItems: 5, metricsAllow: ['127.0.0.1'] };
  const r = reload(changed);
  t.equal(r.code, 0, r.err);
  t.equal(
    r.out,
    'reloaded: certificates\n' + 'changed in the file, applied live: log.level, admins, modules.blocking\n' + 'changed in the file, taking effect after a restart: metrics\n',
  );

  // A debug line of a new session's logger (a child of a child of the root).
  const { s } = await rawLogin(server.port, 'carol', 'two');
  s.close();
  await logged(server, /"level":20,.*"msg":"TLS established"/);
  t.equal(server.output().match(/"msg":"TLS established"/g)?.length, 1, 'only the login after the reload logged at debug');

  t.equal(await adminCommand('bob'), 'result', 'the new admin runs an admin command');
  t.equal(await adminCommand('alice'), 'forbidden', 'the removed one is forbidden');
  t.equal(await block('bob', 3), 'result', 'the blocklist takes more now');

  const again = reload(changed);
  t.equal(again.out, 'reloaded: certificates\nchanged in the file, taking effect after a restart: metrics\n', 'nothing left to apply; metrics still waits');
});

t.test('a per-host override of admins is named per host and applies to that host', async (t) => {
  const r = reload({ level: 'debug', admins: ['bob@localhost'], maxItems: 5, metricsAllow: ['127.0.0.1'], hostAdmins: ['carol@localhost'] });
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^changed in the file, applied live: hosts\."localhost"\.admins$/m);
  t.equal(await adminCommand('carol'), 'result');
  t.equal(await adminCommand('bob'), 'forbidden');
});

t.test('accounts options apply live: a lower max_sessions_per_user refuses the next session', async (t) => {
  await client('bob');
  const r = reload({ level: 'debug', admins: ['bob@localhost'], maxItems: 5, metricsAllow: ['127.0.0.1'], hostAdmins: ['carol@localhost'], maxSessions: 1 });
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^changed in the file, applied live: accounts$/m);
  const { s, bound } = await rawLogin(server.port, 'bob', 'second');
  t.teardown(() => s.close());
  t.equal(bound.attrs.type, 'error');
  t.equal(errorCondition(bound), 'resource-constraint', 'bob has a session already: no second one');
});
