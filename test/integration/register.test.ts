// XEP-0077 in-band registration over real sockets: off by default, registering then logging in,
// conflict, password policy, the per-IP throttle, invitations (XEP-0445 and the `starling
// invite` command), and, once authenticated, password change and account removal.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN, PASSWORD, type TestServer } from '../helpers/harness.js';
import { connect, rawLogin, RawStream, xml } from '../helpers/clients.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { configDir, runStarling } from '../helpers/cli.js';
import { makeJid } from '../../src/jid.js';
import { InviteStore } from '../../modules/register/store.js';

const REGISTER = 'jabber:iq:register';
const FEATURE = 'http://jabber.org/features/iq-register';
const IBR_TOKEN = 'urn:xmpp:ibr-token:0';
const DATA = 'jabber:x:data';
const MODULES = ['sasl', 'ping', 'disco', 'register'];

const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

/** A raw stream after STARTTLS, with the features it was offered. */
async function secured(port: number) {
  const s = await RawStream.open(port);
  s.header();
  const plainFeatures = await s.element('stream:features');
  await s.startTls();
  s.header();
  const features = await s.element('stream:features');
  return { s, features, plainFeatures };
}

let ids = 0;
/** Sends an IQ on a raw stream and waits for the answer with its id. */
async function iq(s: RawStream, type: 'get' | 'set', payload: string): Promise<Element> {
  const id = `q${++ids}`;
  s.write(`<iq type='${type}' id='${id}'>${payload}</iq>`);
  return s.until(() => {
    const i = s.elements.findIndex((e) => e.name === 'iq' && e.attrs.id === id);
    return i === -1 ? undefined : s.elements.splice(i, 1)[0];
  });
}

const legacy = (username: string, password: string) => `<query xmlns='${REGISTER}'><username>${username}</username><password>${password}</password></query>`;

const form = (fields: Record<string, string>) =>
  `<query xmlns='${REGISTER}'><x xmlns='${DATA}' type='submit'><field var='FORM_TYPE'><value>${REGISTER}</value></field>` +
  Object.entries(fields)
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join('') +
  `</x></query>`;

/** Registers on a fresh stream; resolves with the answer. */
async function register(ts: TestServer, payload: string): Promise<Element> {
  const { s } = await secured(ts.port);
  try {
    return await iq(s, 'set', payload);
  } finally {
    s.close();
  }
}

async function canLogin(ts: TestServer, user: string, password: string): Promise<boolean> {
  try {
    const c = await connect(ts, user, { password, presence: false });
    await c.stop();
    return true;
  } catch {
    return false;
  }
}

t.test('registration is off by default', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  const { s, features } = await secured(ts.port);
  t.notOk(features.getChild('register', FEATURE), 'no registration stream feature');
  const answer = await iq(s, 'get', `<query xmlns='${REGISTER}'/>`);
  t.equal(answer.attrs.type, 'error');
  t.equal(errorCondition(answer), 'service-unavailable');
  const set = await iq(s, 'set', legacy('mallory', 'a long enough password'));
  t.equal(errorCondition(set), 'service-unavailable');
  t.notOk(await ts.server.core.accounts.exists(makeJid('mallory', DOMAIN)));
  s.close();
});

t.test('open registration', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { register: { allow_registration: true, registrations_per_ip_per_hour: 3 } },
  });

  t.test('offered over TLS only', async (t) => {
    const { s, features, plainFeatures } = await secured(ts.port);
    t.notOk(plainFeatures.getChild('register', FEATURE), 'not before STARTTLS');
    t.ok(features.getChild('register', FEATURE), 'offered after STARTTLS');
    t.notOk(features.getChild('register', IBR_TOKEN), 'no invitation feature when invitations are not required');
    s.close();
    const plain = await RawStream.open(ts.port);
    plain.header();
    await plain.element('stream:features');
    plain.write(`<iq type='get' id='x'><query xmlns='${REGISTER}'/></iq>`);
    t.equal(await plain.streamError(), 'policy-violation', 'an IQ before TLS ends the stream');
    plain.close();
  });

  t.test('the fields, then registering, then logging in', async (t) => {
    const { s } = await secured(ts.port);
    const fields = await iq(s, 'get', `<query xmlns='${REGISTER}'/>`);
    t.equal(fields.attrs.type, 'result');
    t.notOk(fields.attrs.to, 'the answer is addressed to nobody: the client has no address yet');
    const query = fields.getChild('query', REGISTER)!;
    t.ok(query.getChild('username') && query.getChild('password'), 'username and password asked for');
    t.ok(query.getChildText('instructions'));
    const x = query.getChild('x', DATA)!;
    t.same(
      x.getChildren('field').map((f) => f.attrs.var),
      ['FORM_TYPE', 'username', 'password'],
      'the data form has the same fields',
    );
    const done = await iq(s, 'set', legacy('Alice', 'alice secret password'));
    t.equal(done.attrs.type, 'result', 'registered');
    const again = await iq(s, 'set', legacy('alice2', 'alice secret password'));
    t.equal(errorCondition(again), 'not-acceptable', 'one account per connection (XEP-0077 §3.1.1)');
    s.close();
    t.ok(await canLogin(ts, 'alice', 'alice secret password'), 'the new account logs in (username case-mapped)');
  });

  t.test('a taken username gets conflict', async (t) => {
    const answer = await register(ts, form({ username: 'alice', password: 'another good password' }));
    t.equal(answer.attrs.type, 'error');
    t.equal(errorCondition(answer), 'conflict');
    t.ok(await canLogin(ts, 'alice', 'alice secret password'), 'the account is unchanged');
  });

  t.test('policy violations get not-acceptable', async (t) => {
    t.equal(errorCondition(await register(ts, legacy('bob', 'short'))), 'not-acceptable', 'password too short');
    t.equal(errorCondition(await register(ts, legacy('bob', ''))), 'not-acceptable', 'empty password');
    t.equal(errorCondition(await register(ts, `<query xmlns='${REGISTER}'><password>good enough pw</password></query>`)), 'not-acceptable', 'no username');
    t.equal(errorCondition(await register(ts, legacy('b:o@b', 'good enough pw'))), 'not-acceptable', 'a username that is no localpart');
    t.notOk(await ts.server.core.accounts.exists(makeJid('bob', DOMAIN)));
  });

  t.test('a removal before authentication is unexpected', async (t) => {
    const answer = await register(ts, `<query xmlns='${REGISTER}'><remove/></query>`);
    t.equal(errorCondition(answer), 'unexpected-request');
  });

  t.test('at most registrations_per_ip_per_hour from one address', async (t) => {
    // alice was the first of 3.
    t.equal((await register(ts, legacy('bob', 'bob secret password'))).attrs.type, 'result');
    t.equal((await register(ts, legacy('carol', 'carol secret password'))).attrs.type, 'result');
    const refused = await register(ts, legacy('dave', 'dave secret password'));
    t.equal(errorCondition(refused), 'policy-violation');
    t.equal(refused.getChild('error')!.attrs.type, 'wait', 'type wait: try later');
    t.notOk(await ts.server.core.accounts.exists(makeJid('dave', DOMAIN)));
  });
});

t.test('registration by invitation', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { register: { allow_registration: true, require_invitation: true } },
  });
  const invites = await InviteStore.open(ts.server.core.storage);

  t.test('advertised, and the form asks for the token', async (t) => {
    const { s, features } = await secured(ts.port);
    t.ok(features.getChild('register', FEATURE));
    t.ok(features.getChild('register', IBR_TOKEN), 'XEP-0445 stream feature');
    const fields = await iq(s, 'get', `<query xmlns='${REGISTER}'/>`);
    const vars = fields
      .getChild('query', REGISTER)!
      .getChild('x', DATA)!
      .getChildren('field')
      .map((f) => f.attrs.var);
    t.ok(vars.includes('token'));
    s.close();
  });

  t.test('without a token, or with a wrong one: refused', async (t) => {
    t.equal(errorCondition(await register(ts, legacy('erin', 'erin secret password'))), 'forbidden');
    t.equal(errorCondition(await register(ts, form({ username: 'erin', password: 'erin secret password', token: 'nope' }))), 'forbidden');
    const { s } = await secured(ts.port);
    const preauth = await iq(s, 'set', `<preauth xmlns='urn:xmpp:pars:0' token='nope'/>`);
    t.equal(errorCondition(preauth), 'item-not-found', 'XEP-0445: an unknown token');
    s.close();
    t.notOk(await ts.server.core.accounts.exists(makeJid('erin', DOMAIN)));
  });

  t.test('a token in the form, then by XEP-0445 <preauth/>; its uses are counted', async (t) => {
    const { token } = await invites.create(DOMAIN, { uses: 2, expiresInSeconds: 3600 });
    const first = await register(ts, form({ username: 'erin', password: 'erin secret password', token }));
    t.equal(first.attrs.type, 'result', 'registered with the token in the form');
    t.equal((await invites.info(DOMAIN, token))!.uses, 1);
    t.equal(errorCondition(await register(ts, form({ username: 'erin', password: 'erin secret password', token }))), 'conflict');
    t.equal((await invites.info(DOMAIN, token))!.uses, 1, 'a failed registration does not use the token up');

    const { s } = await secured(ts.port);
    t.equal((await iq(s, 'set', `<preauth xmlns='urn:xmpp:pars:0' token='${token}'/>`)).attrs.type, 'result', 'preauth accepted');
    t.equal((await iq(s, 'set', legacy('frank', 'frank secret password'))).attrs.type, 'result', 'registered after preauth');
    s.close();
    t.equal((await invites.info(DOMAIN, token))!.uses, 2);
    t.equal(errorCondition(await register(ts, form({ username: 'gina', password: 'gina secret password', token }))), 'forbidden', 'used up');
    t.ok(await canLogin(ts, 'erin', 'erin secret password'));
    t.ok(await canLogin(ts, 'frank', 'frank secret password'));
  });

  t.test('an expired token is refused', async (t) => {
    const { token } = await invites.create(DOMAIN, { uses: 1, expiresInSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    t.equal(errorCondition(await register(ts, form({ username: 'gina', password: 'gina secret password', token }))), 'forbidden');
  });

  t.test('a token from `starling invite`', async (t) => {
    const { dir, config } = configDir(
      t,
      'invite',
      () => `data_dir = "${ts.dataDir}"
modules_enabled = ${JSON.stringify(MODULES)}
[log]
format = "json"
[modules.register]
allow_registration = true
require_invitation = true
`,
    );
    const run = (args: string[]) => runStarling(args, { cwd: dir });
    const r = run(['invite', DOMAIN, '--uses', '1', '--expires-in', '600', '--config', config]);
    t.equal(r.code, 0, r.err);
    const [token, uri] = r.out.split('\n');
    t.match(token, /^[A-Za-z0-9_-]{20,}$/, 'the token comes first');
    t.equal(uri, `xmpp:${DOMAIN}?register;preauth=${token}`, 'then its XEP-0401 registration URI');
    const stored = (await invites.info(DOMAIN, token!))!;
    t.same([stored.maxUses, stored.uses], [1, 0], 'stored for one use');
    t.ok(stored.expiresAt! > Date.now() + 590_000 && stored.expiresAt! <= Date.now() + 600_000, 'expiring in 600 s');
    t.equal((await register(ts, form({ username: 'hank', password: 'hank secret password', token: token! }))).attrs.type, 'result');
    t.equal((await invites.info(DOMAIN, token!))!.uses, 1);
    t.ok(await canLogin(ts, 'hank', 'hank secret password'));

    t.equal(run(['invite', 'elsewhere.example', '--config', config]).code, 1, 'an unknown host');
    const bad = run(['invite', DOMAIN, '--uses', '0', '--config', config]);
    t.equal(bad.code, 1);
    t.match(bad.err, /--uses must be a whole number of at least 1/);
  });
});

t.test('after authentication', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  await ts.addUser('ivan');
  await ts.addUser('judy');

  t.test('the registration of the account itself', async (t) => {
    const c = await connect(ts, 'ivan', { presence: false });
    t.teardown(() => c.stop());
    const answer = await c.xmpp.iqCaller.get(xml('query', { xmlns: REGISTER }));
    t.ok(answer.getChild('registered'), '<registered/>');
    t.equal(answer.getChildText('username'), 'ivan');
  });

  t.test('password change, then login with the new password', async (t) => {
    const c = await connect(ts, 'ivan', { presence: false });
    const change = (username: string, password: string) =>
      c.xmpp.iqCaller.set(xml('query', { xmlns: REGISTER }, xml('username', {}, username), xml('password', {}, password)), DOMAIN).then(
        () => 'result',
        (err: { condition?: string }) => err.condition,
      );
    t.equal(await change('judy', 'a brand new password'), 'forbidden', "another account's password: forbidden");
    t.equal(await change('ivan', 'short'), 'not-acceptable', 'too short');
    t.equal(await change('ivan', ''), 'bad-request', 'an empty password changes nothing');
    t.equal(await change('ivan', 'a brand new password'), 'result');
    await c.stop();
    t.ok(await canLogin(ts, 'ivan', 'a brand new password'), 'the new password works');
    t.notOk(await canLogin(ts, 'ivan', PASSWORD), 'the old one does not');
    t.ok(await canLogin(ts, 'judy', PASSWORD), "judy's is unchanged");
  });

  t.test('removal: the account and all it owns are gone, and its streams are closed', async (t) => {
    const storage = ts.server.core.storage;
    const before = await rowsOwnedBy(storage, DOMAIN, 'judy');
    t.ok(before.account! > 0 && before.account_credential! > 0, 'judy owns rows');
    const other = await connect(ts, 'judy', { resource: 'phone' });
    let otherError: string | undefined;
    let otherGone = false;
    other.xmpp.on('error', (err: { condition?: string }) => (otherError = err.condition));
    other.xmpp.on('disconnect', () => (otherGone = true));
    const { s } = await rawLogin(ts.port, 'judy', 'desk');
    s.write(`<iq type='set' id='bye'><query xmlns='${REGISTER}'><remove/></query></iq>`);
    const reply = await s.element('iq');
    t.equal(reply.attrs.id, 'bye');
    t.equal(reply.attrs.type, 'result', 'the removal is confirmed');
    t.equal(await s.streamError(), 'not-authorized', 'then the stream ends with <not-authorized/> (XEP-0077 §3.2)');
    await s.until(() => s.closed);
    t.notOk(await ts.server.core.accounts.exists(makeJid('judy', DOMAIN)), 'the account is gone');
    t.same(
      Object.values(await rowsOwnedBy(storage, DOMAIN, 'judy')).filter((n) => n !== 0),
      [],
      'no row of judy is left',
    );
    await s.until(() => otherGone || undefined);
    t.equal(otherError, 'not-authorized', "judy's other session gets <not-authorized/> too");
    await other.stop();
    t.notOk(await canLogin(ts, 'judy', PASSWORD));
  });
});
