// XEP-0050 Ad-Hoc Commands and XEP-0133 Service Administration over real sockets, with
// @xmpp/client: the commands listed to admins only, each command run by an admin (execute,
// the form, its submission), the framework's errors (bad-action, bad-sessionid,
// session-expired, malformed-action), cancel, and a non-admin refused with forbidden. A
// disabled account cannot log in and its sessions end; announcements and the message of the day
// reach the users.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, errorCondition, RawStream, xml, type TestClient } from '../helpers/clients.js';
import { DOMAIN, PASSWORD, nextHook, sessionsEnded, startTestServer } from '../helpers/harness.js';
import { makeJid } from '../../src/jid.js';

const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const NS_ADMIN = 'http://jabber.org/protocol/admin';
const NS_DATA = 'jabber:x:data';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'adhoc', 'admin_adhoc'];
const node = (name: string) => `${NS_ADMIN}#${name}`;

let ids = 0;
async function iq(client: TestClient, type: 'get' | 'set', payload: Element): Promise<Element> {
  const id = `adhoc-${++ids}`;
  await client.send(xml('iq', { type, id, to: DOMAIN }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const command = (client: TestClient, attrs: Record<string, string | undefined>, ...children: Element[]) =>
  iq(client, 'set', xml('command', { xmlns: NS_COMMANDS, ...attrs }, ...children));

function submit(fields: Record<string, string | string[]>): Element {
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_ADMIN)),
    ...Object.entries(fields).map(([name, v]) => xml('field', { var: name }, ...(Array.isArray(v) ? v : [v]).map((s) => xml('value', {}, s)))),
  );
}

/** The values of a field of the command's form. */
function fieldValues(cmd: Element, name: string): string[] {
  const field = cmd
    .getChild('x', NS_DATA)
    ?.getChildren('field')
    .find((f) => f.attrs.var === name);
  return field ? field.getChildren('value').map((v) => v.getText()) : [];
}

/** Executes a one-form command, checks the form, submits `fields`: the completed <command/>. */
async function run(t: Test, client: TestClient, name: string, fields: Record<string, string | string[]>): Promise<Element> {
  const first = (await command(client, { node: node(name), action: 'execute' })).getChild('command', NS_COMMANDS)!;
  t.equal(first.attrs.status, 'executing', `${name}: a form`);
  t.equal(first.getChild('actions')?.attrs.execute, 'complete', `${name}: one stage, completed by its submission`);
  t.ok(first.getChild('actions')?.getChild('complete'));
  const form = first.getChild('x', NS_DATA)!;
  t.equal(form.attrs.type, 'form');
  t.same(fieldValues(first, 'FORM_TYPE'), [NS_ADMIN]);
  for (const name of Object.keys(fields))
    t.ok(
      form.getChildren('field').some((f) => f.attrs.var === name),
      `the form has ${name}`,
    );
  const reply = await command(client, { node: node(name), sessionid: first.attrs.sessionid, action: 'complete' }, submit(fields));
  t.equal(reply.attrs.type, 'result', `${name}: ${errorCondition(reply) ?? 'result'}`);
  const done = reply.getChild('command', NS_COMMANDS)!;
  t.equal(done.attrs.status, 'completed');
  t.equal(done.attrs.sessionid, first.attrs.sessionid);
  return done;
}

/** Executes a command that answers at once. */
async function runNow(t: Test, client: TestClient, name: string): Promise<Element> {
  const done = (await command(client, { node: node(name) })).getChild('command', NS_COMMANDS)!;
  t.equal(done.attrs.status, 'completed', `${name} completes at once`);
  return done;
}

async function loginFails(t: Test, connecting: Promise<TestClient>): Promise<string | undefined> {
  try {
    const client = await connecting;
    await client.stop();
    t.fail('the login succeeded');
    return undefined;
  } catch (err) {
    return (err as { condition?: string }).condition;
  }
}

t.test('ad-hoc administration', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, admins: [`boss@${DOMAIN}`] });
  for (const user of ['boss', 'alice', 'bob', 'carol']) await ts.addUser(user);
  const boss = await connect(ts, 'boss', { resource: 'desk' });
  const alice = await connect(ts, 'alice', { resource: 'phone' });
  t.teardown(() => Promise.all([boss.stop(), alice.stop()]));

  t.test('disco: the commands are listed to admins only', async (t) => {
    const info = await iq(boss, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
    t.ok(
      info
        .getChild('query')!
        .getChildren('feature')
        .some((f) => f.attrs.var === NS_COMMANDS),
      'the host advertises commands',
    );
    const items = (await iq(boss, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: NS_COMMANDS }))).getChild('query')!.getChildren('item');
    const nodes = items.map((i) => i.attrs.node);
    for (const name of ['add-user', 'delete-user', 'disable-user', 'reenable-user', 'change-user-password', 'end-user-session', 'get-user-roster', 'get-user-lastlogin']) {
      t.ok(nodes.includes(node(name)), name);
    }
    for (const name of ['get-registered-users-num', 'get-online-users-num', 'get-online-users-list', 'announce', 'set-motd', 'edit-motd', 'delete-motd']) {
      t.ok(nodes.includes(node(name)), name);
    }
    t.ok(items.every((i) => i.attrs.jid === DOMAIN && i.attrs.name));
    const nodeInfo = (await iq(boss, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: node('add-user') }))).getChild('query')!;
    t.same(nodeInfo.getChild('identity')!.attrs.category, 'automation');
    t.same(nodeInfo.getChild('identity')!.attrs.type, 'command-node');
    t.same(
      nodeInfo
        .getChildren('feature')
        .map((f) => f.attrs.var)
        .sort(),
      [NS_COMMANDS, NS_DATA],
    );

    const hers = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: NS_COMMANDS }));
    t.equal(hers.attrs.type, 'result');
    t.same(hers.getChild('query')!.getChildren('item'), [], 'a non-admin sees no command');
    const refused = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: node('add-user') }));
    t.equal(errorCondition(refused), 'forbidden');
  });

  t.test('a non-admin is forbidden to run a command', async (t) => {
    for (const name of ['add-user', 'get-online-users-num', 'announce']) {
      t.equal(errorCondition(await command(alice, { node: node(name), action: 'execute' })), 'forbidden', name);
    }
    t.equal(errorCondition(await command(boss, { node: `${NS_ADMIN}#no-such-command` })), 'item-not-found');
  });

  t.test('add-user, then the user logs in', async (t) => {
    const done = await run(t, boss, 'add-user', { accountjid: `dave@${DOMAIN}`, password: 'dave’s secret', 'password-verify': 'dave’s secret', email: 'dave@example.org' });
    t.equal(done.getChild('note')?.attrs.type, 'info');
    const dave = await connect(ts, 'dave', { password: 'dave’s secret' });
    await dave.stop();

    const first = (await command(boss, { node: node('add-user') })).getChild('command', NS_COMMANDS)!;
    const again = await command(boss, { node: node('add-user'), sessionid: first.attrs.sessionid }, submit({ accountjid: `dave@${DOMAIN}`, password: 'x'.repeat(12) }));
    t.equal(errorCondition(again), 'conflict', 'an existing account');
    const mismatch = await command(
      boss,
      { node: node('add-user'), sessionid: first.attrs.sessionid },
      submit({ accountjid: `erin@${DOMAIN}`, password: 'one password', 'password-verify': 'another' }),
    );
    t.equal(errorCondition(mismatch), 'not-acceptable', 'passwords that differ');
    const foreign = await command(boss, { node: node('add-user'), sessionid: first.attrs.sessionid }, submit({ accountjid: 'erin@elsewhere.example', password: 'one password' }));
    t.equal(errorCondition(foreign), 'not-acceptable', 'another domain');
    const cancel = await command(boss, { node: node('add-user'), sessionid: first.attrs.sessionid, action: 'cancel' });
    t.equal(cancel.getChild('command', NS_COMMANDS)!.attrs.status, 'canceled', 'the session stayed open after the errors, and cancels');
  });

  t.test('framework errors', async (t) => {
    const first = (await command(boss, { node: node('announce') })).getChild('command', NS_COMMANDS)!;
    const sessionid = first.attrs.sessionid!;
    const appCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS_COMMANDS)?.name;
    const badAction = await command(boss, { node: node('announce'), sessionid, action: 'next' }, submit({ announcement: 'x' }));
    t.equal(errorCondition(badAction), 'bad-request');
    t.equal(appCondition(badAction), 'bad-action', 'next where complete is offered');
    const prev = await command(boss, { node: node('announce'), sessionid, action: 'prev' });
    t.equal(appCondition(prev), 'bad-action', 'no previous stage');
    const malformed = await command(boss, { node: node('announce'), sessionid, action: 'jump' });
    t.equal(appCondition(malformed), 'malformed-action');
    const noForm = await command(boss, { node: node('announce'), sessionid, action: 'complete' });
    t.equal(appCondition(noForm), 'bad-payload');
    const unknown = await command(boss, { node: node('announce'), sessionid: 'nonsense', action: 'complete' }, submit({ announcement: 'x' }));
    t.equal(appCondition(unknown), 'bad-sessionid');
    const otherRequester = await connect(ts, 'boss', { resource: 'laptop' });
    const stolen = await command(otherRequester, { node: node('announce'), sessionid, action: 'cancel' });
    t.equal(appCondition(stolen), 'bad-sessionid', 'sessions belong to their requester (full JID)');
    await otherRequester.stop();

    // The session expires after session_timeout (600 s) without a request: the clock moves on.
    const realNow = Date.now;
    const later = realNow() + 601_000;
    Date.now = () => later;
    let expired: Element;
    try {
      expired = await command(boss, { node: node('announce'), sessionid, action: 'complete' }, submit({ announcement: 'x' }));
    } finally {
      Date.now = realNow;
    }
    t.equal(errorCondition(expired), 'not-allowed');
    t.equal(appCondition(expired), 'session-expired');
  });

  t.test('counts and lists', async (t) => {
    const extra = await connect(ts, 'alice', { resource: 'laptop' });
    t.teardown(() => extra.stop());
    const registered = await runNow(t, boss, 'get-registered-users-num');
    t.same(fieldValues(registered, 'registeredusersnum'), [String((await ts.server.core.accounts.list(DOMAIN)).length)]);
    const online = await runNow(t, boss, 'get-online-users-num');
    t.same(fieldValues(online, 'onlineusersnum'), ['3'], 'sessions: boss, alice twice');
    const list = await run(t, boss, 'get-online-users-list', { max_items: '25' });
    t.same(fieldValues(list, 'onlineuserjids'), [`alice@${DOMAIN}`, `boss@${DOMAIN}`]);
    const one = await run(t, boss, 'get-online-users-list', { max_items: 'none' });
    t.equal(fieldValues(one, 'onlineuserjids').length, 2);
  });

  t.test('get-user-roster and get-user-lastlogin', async (t) => {
    await alice.send(
      xml('iq', { type: 'set', id: 'roster-add' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: `bob@${DOMAIN}`, name: 'Bob' }, xml('group', {}, 'Friends')))),
    );
    await alice.next((el) => el.attrs.id === 'roster-add');
    const roster = await run(t, boss, 'get-user-roster', { accountjids: [`alice@${DOMAIN}`] });
    const item = roster.getChild('x', NS_DATA)!.getChild('query', 'jabber:iq:roster')!.getChild('item')!;
    t.same([item.attrs.jid, item.attrs.name, item.attrs.subscription, item.getChildText('group')], [`bob@${DOMAIN}`, 'Bob', 'none', 'Friends']);

    const last = await run(t, boss, 'get-user-lastlogin', { accountjids: [`alice@${DOMAIN}`] });
    const [when] = fieldValues(last, 'lastlogin');
    t.match(when, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'an XEP-0082 DateTime');
    t.ok(Math.abs(Date.parse(when!) - Date.now()) < 60_000);
    const never = await run(t, boss, 'get-user-lastlogin', { accountjids: [`carol@${DOMAIN}`] });
    t.same(fieldValues(never, 'lastlogin'), ['']);
    t.equal(
      errorCondition(
        await command(
          boss,
          { node: node('get-user-lastlogin'), sessionid: (await command(boss, { node: node('get-user-lastlogin') })).getChild('command')!.attrs.sessionid },
          submit({ accountjids: `nobody@${DOMAIN}` }),
        ),
      ),
      'item-not-found',
    );
  });

  t.test('announce reaches every online session', async (t) => {
    const bob = await connect(ts, 'bob');
    t.teardown(() => bob.stop());
    const done = await run(t, boss, 'announce', { announcement: ['Maintenance at noon.', 'Back soon.'] });
    t.match(done.getChildText('note'), /3 online session/);
    for (const client of [alice, bob, boss]) {
      const msg = await client.next((el) => el.name === 'message' && el.attrs.type === 'headline');
      t.equal(msg.attrs.from, DOMAIN);
      t.equal(msg.getChildText('body'), 'Maintenance at noon.\nBack soon.');
    }
  });

  t.test('message of the day: set, at login, edit, delete', async (t) => {
    await run(t, boss, 'set-motd', { motd: ['Welcome to Starling.'] });
    await alice.next((el) => el.name === 'message' && el.getChildText('body') === 'Welcome to Starling.');
    await boss.next((el) => el.name === 'message' && el.getChildText('body') === 'Welcome to Starling.');
    const carol = await connect(ts, 'carol');
    const motd = await carol.next((el) => el.name === 'message' && el.attrs.type === 'headline');
    t.equal(motd.getChildText('body'), 'Welcome to Starling.', 'sent at login');
    await carol.stop();

    const edit = (await command(boss, { node: node('edit-motd') })).getChild('command', NS_COMMANDS)!;
    t.same(fieldValues(edit, 'motd'), ['Welcome to Starling.'], 'the form holds the current message');
    const edited = await command(boss, { node: node('edit-motd'), sessionid: edit.attrs.sessionid }, submit({ motd: ['Welcome back.', 'Line two.'] }));
    t.equal(edited.getChild('command')!.attrs.status, 'completed');
    const carol2 = await connect(ts, 'carol');
    t.equal((await carol2.next((el) => el.name === 'message' && el.attrs.type === 'headline')).getChildText('body'), 'Welcome back.\nLine two.');
    await carol2.stop();

    const deleted = await runNow(t, boss, 'delete-motd');
    t.match(deleted.getChildText('note'), /deleted/);
    const carol3 = await connect(ts, 'carol');
    await carol3.roundTrip();
    t.same(
      carol3.take((el) => el.name === 'message'),
      [],
      'no message of the day any more',
    );
    await carol3.stop();
  });

  t.test('change-user-password', async (t) => {
    const bob = await connect(ts, 'bob', { resource: 'old' });
    const ended = sessionsEnded(ts, 'bob');
    await run(t, boss, 'change-user-password', { accountjid: `bob@${DOMAIN}`, password: 'a new password' });
    await ended;
    await bob.stop();
    t.equal(await loginFails(t, connect(ts, 'bob')), 'not-authorized', 'the old password no longer works');
    await (await connect(ts, 'bob', { password: 'a new password' })).stop();
  });

  t.test('disable-user ends the sessions and refuses logins; reenable-user lets in again', async (t) => {
    const carol = await connect(ts, 'carol', { resource: 'one' });
    const ended = sessionsEnded(ts, 'carol');
    await run(t, boss, 'disable-user', { accountjids: [`carol@${DOMAIN}`] });
    await ended;
    await carol.stop();
    t.ok(await ts.server.core.accounts.isDisabled(makeJid('carol', DOMAIN)));
    t.equal(await loginFails(t, connect(ts, 'carol')), 'account-disabled');
    t.equal(await loginFails(t, connect(ts, 'carol', { password: 'wrong password' })), 'not-authorized', 'a wrong password says nothing more');
    // SASL2 (XEP-0388) too.
    const raw = await RawStream.open(ts.port);
    t.teardown(() => raw.close());
    raw.header();
    await raw.element('stream:features');
    await raw.startTls();
    raw.header();
    await raw.element('stream:features');
    raw.write(
      `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${Buffer.from(`\0carol\0${PASSWORD}`).toString('base64')}</initial-response></authenticate>`,
    );
    const failure = await raw.element('failure');
    t.ok(failure.getChild('account-disabled', 'urn:ietf:params:xml:ns:xmpp-sasl'), 'SASL2: <account-disabled/>');
    await run(t, boss, 'reenable-user', { accountjids: [`carol@${DOMAIN}`] });
    await (await connect(ts, 'carol', { password: PASSWORD })).stop();
  });

  t.test('end-user-session: one resource, or all', async (t) => {
    const one = await connect(ts, 'carol', { resource: 'one' });
    const two = await connect(ts, 'carol', { resource: 'two' });
    const oneClosed = nextHook(ts, 'session/closed', ({ session }) => session.jid?.toString() === one.jid);
    t.match((await run(t, boss, 'end-user-session', { accountjids: [one.jid] })).getChildText('note'), /^1 session/);
    await oneClosed;
    await two.roundTrip();
    t.equal(ts.server.core.sessions.count(makeJid('carol', DOMAIN)), 1, 'the other resource stays');
    const ended = sessionsEnded(ts, 'carol');
    await run(t, boss, 'end-user-session', { accountjids: [`carol@${DOMAIN}`] });
    await ended;
    await Promise.all([one.stop(), two.stop()]);
  });

  t.test('delete-user', async (t) => {
    const done = await run(t, boss, 'delete-user', { accountjids: [`carol@${DOMAIN}`, `nobody@${DOMAIN}`] });
    const notes = done.getChildren('note').map((n) => n.attrs.type);
    t.same(notes, ['info', 'error'], 'one deleted, one that was not there');
    t.notOk(await ts.server.core.accounts.exists(makeJid('carol', DOMAIN)));
  });
});

t.test('per-host admins', async (t) => {
  const OTHER = 'other.localhost';
  const ts = await startTestServer(t, { modules_enabled: MODULES, admins: [`boss@${DOMAIN}`], hosts: { [DOMAIN]: { admins: [`alice@${DOMAIN}`] }, [OTHER]: {} } });
  await ts.addUser('boss');
  await ts.addUser('alice');
  const boss = await connect(ts, 'boss');
  const alice = await connect(ts, 'alice');
  t.teardown(() => Promise.all([boss.stop(), alice.stop()]));
  t.equal(errorCondition(await command(boss, { node: node('get-online-users-num') })), 'forbidden', 'the host overrides the global admins');
  t.equal((await command(alice, { node: node('get-online-users-num') })).getChild('command')!.attrs.status, 'completed');
});
