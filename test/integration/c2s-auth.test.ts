// Authentication and binding over real sockets: STARTTLS, direct TLS, SCRAM(-PLUS), PLAIN rules,
// failures and throttling, resource conflicts and limits.
import t from 'tap';
import { startTestServer, PASSWORD } from '../helpers/harness.js';
import { connect, rawLogin, RawStream } from '../helpers/clients.js';
import { scramLogin } from '../helpers/scram-client.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

/** Opens a raw stream, does STARTTLS, and returns it ready for SASL. */
async function securedStream(port: number) {
  const s = await RawStream.open(port);
  s.header();
  await s.element('stream:features');
  await s.startTls();
  s.header();
  const features = await s.element('stream:features');
  return { s, features };
}

t.test('authentication', async (t) => {
  const ts = await startTestServer(t);
  await ts.addUser('alice');

  for (const binding of ['tls-exporter', 'tls-server-end-point'] as const) {
    t.test(`STARTTLS then SCRAM-SHA-256-PLUS with ${binding}`, async (t) => {
      const { s, features } = await securedStream(ts.port);
      const mechanisms = features
        .getChild('mechanisms', SASL)!
        .getChildren('mechanism')
        .map((m) => m.getText());
      t.ok(mechanisms.includes('SCRAM-SHA-256-PLUS'), 'SCRAM-SHA-256-PLUS offered over TLS');
      t.ok(mechanisms.includes('PLAIN'), 'PLAIN offered over TLS');
      const cb = features.getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0')!;
      t.ok(
        cb.getChildren('channel-binding').some((c) => c.attrs.type === binding),
        `${binding} advertised (XEP-0440)`,
      );
      const { result, serverSignatureOk } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256-PLUS', username: 'alice', password: PASSWORD, binding });
      t.equal(result.name, 'success');
      t.ok(serverSignatureOk, 'server signature verifies');
      s.restart();
      s.header();
      const after = await s.element('stream:features');
      t.ok(after.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'), 'bind offered after authentication');
      s.close();
    });
  }

  t.test('SCRAM-SHA-256-PLUS with channel binding data of another connection fails', async (t) => {
    const { s } = await securedStream(ts.port);
    const other = await securedStream(ts.port);
    // Swap the TLS socket the client uses to compute the binding: the data will not match.
    Object.defineProperty(s, 'tlsSocket', { get: () => other.s.tlsSocket });
    const { result } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256-PLUS', username: 'alice', password: PASSWORD, binding: 'tls-exporter' });
    t.equal(result.name, 'failure');
    t.ok(result.getChild('not-authorized'));
    s.close();
    other.s.close();
  });

  t.test('SCRAM-SHA-1 over STARTTLS with @xmpp/client, then a message to itself', async (t) => {
    const c = await connect(ts, 'alice', { resource: 'laptop' });
    t.match(c.jid, /^alice@localhost\/laptop/);
    await c.stop();
  });

  t.test('direct TLS (XEP-0368) login', async (t) => {
    // A raw stream: @xmpp/client's xmpps:// transport misses a server that answers its header
    // before its own write callback fires.
    const s = await RawStream.open(ts.tlsPort, true);
    s.header();
    const features = await s.element('stream:features');
    t.notOk(features.getChild('starttls'), 'no STARTTLS on a direct TLS stream');
    const { result } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256-PLUS', username: 'alice', password: PASSWORD, binding: 'tls-exporter' });
    t.equal(result.name, 'success');
    s.restart();
    s.header();
    await s.element('stream:features');
    s.write("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>direct</resource></bind></iq>");
    const bound = await s.element('iq');
    t.equal(bound.getChild('bind')?.getChildText('jid'), 'alice@localhost/direct');
    s.close();
  });

  t.test('wrong password gets not-authorized', async (t) => {
    const { s } = await securedStream(ts.port);
    const { result } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'wrong password' });
    t.equal(result.name, 'failure');
    t.ok(result.getChild('not-authorized'), 'not-authorized');
    const unknown = await scramLogin(s, { mechanism: 'SCRAM-SHA-256', username: 'nobody', password: 'whatever1' });
    t.ok(unknown.result.getChild('not-authorized'), 'an unknown user fails the same way');
    s.close();
  });

  t.test('PLAIN over TLS works; stanzas before authentication are refused', async (t) => {
    const { s } = await securedStream(ts.port);
    s.write(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')}</auth>`);
    t.equal((await s.element('success')).name, 'success');
    s.close();
    const again = await securedStream(ts.port);
    again.s.write("<message to='alice@localhost'><body>hi</body></message>");
    t.equal(await again.s.streamError(), 'not-authorized');
    again.s.close();
  });
});

t.test('PLAIN is refused before TLS', async (t) => {
  const ts = await startTestServer(t, { c2s: { require_encryption: false } });
  await ts.addUser('bob');
  const s = await RawStream.open(ts.port);
  s.header();
  const features = await s.element('stream:features');
  const offered = features
    .getChild('mechanisms', SASL)!
    .getChildren('mechanism')
    .map((m) => m.getText());
  t.notOk(offered.includes('PLAIN'), 'PLAIN not offered without TLS');
  t.notOk(
    offered.some((m) => m.endsWith('-PLUS')),
    'no -PLUS without TLS',
  );
  s.write(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0bob\0${PASSWORD}`).toString('base64')}</auth>`);
  const failure = await s.element('failure');
  t.ok(failure.getChild('encryption-required'), 'encryption-required');
  s.close();
});

t.test('TLS required: no SASL before STARTTLS', async (t) => {
  const ts = await startTestServer(t);
  const s = await RawStream.open(ts.port);
  s.header();
  const features = await s.element('stream:features');
  t.ok(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls')?.getChild('required'), 'starttls required');
  t.notOk(features.getChild('mechanisms', SASL), 'no mechanisms before TLS');
  s.write(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${Buffer.from('n,,n=a,r=abc').toString('base64')}</auth>`);
  t.ok((await s.element('failure')).getChild('encryption-required'));
  s.close();
});

t.test('failed attempts are throttled per IP', async (t) => {
  const ts = await startTestServer(t, { c2s: { auth_failures_per_ip_per_minute: 2 } });
  await ts.addUser('carol');
  const { s } = await securedStream(ts.port);
  for (let i = 0; i < 2; i++) {
    const { result } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256', username: 'carol', password: 'bad password' });
    t.ok(result.getChild('not-authorized'));
  }
  s.write(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0carol\0${PASSWORD}`).toString('base64')}</auth>`);
  t.equal(await s.streamError(), 'policy-violation', 'the third attempt in the minute is refused, even with the right password');
});

t.test('resource binding', async (t) => {
  const ts = await startTestServer(t, { accounts: { max_sessions_per_user: 2 } });
  await ts.addUser('dave');

  t.test('a server-generated resource when none is asked', async (t) => {
    const c = await connect(ts, 'dave');
    t.match(c.jid, /^dave@localhost\/starling-[0-9a-f]{12}$/);
    await c.stop();
  });

  t.test('the same full JID replaces the old session with a conflict', async (t) => {
    const first = await rawLogin(ts.port, 'dave', 'phone');
    t.equal(first.bound.getChild('bind')?.getChildText('jid'), 'dave@localhost/phone');
    const second = await rawLogin(ts.port, 'dave', 'phone');
    t.equal(second.bound.getChild('bind')?.getChildText('jid'), 'dave@localhost/phone');
    t.equal(await first.s.streamError(), 'conflict', 'the old session is closed with conflict');
    second.s.close();
  });

  t.test('the per-user session limit', async (t) => {
    const a = await rawLogin(ts.port, 'dave', 'a');
    const b = await rawLogin(ts.port, 'dave', 'b');
    const c = await rawLogin(ts.port, 'dave', 'c');
    t.equal(c.bound.attrs.type, 'error');
    t.ok(c.bound.getChild('error')?.getChild('resource-constraint'), 'a third session gets resource-constraint');
    for (const x of [a, b, c]) x.s.close();
  });
});

t.test('unauthenticated connections time out', async (t) => {
  const ts = await startTestServer(t, { c2s: { auth_timeout: 0.3 } });
  const s = await RawStream.open(ts.port);
  s.header();
  t.equal(await s.streamError(3000), 'connection-timeout');
});
