// The XML stream over a real socket: header checks, restricted XML, size limits, shutdown.
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { PASSWORD, rawLogin, RawStream } from '../helpers/clients.js';

t.test('stream header and XML rules', async (t) => {
  const ts = await startTestServer(t);

  t.test('an unknown host gets host-unknown', async (t) => {
    const s = await RawStream.open(ts.port);
    s.header('example.net');
    t.equal(await s.streamError(), 'host-unknown');
    t.equal(s.headers.length, 1, 'the server opened its own stream before the error');
  });

  t.test('a wrong default namespace gets invalid-namespace', async (t) => {
    const s = await RawStream.open(ts.port);
    s.write("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    t.equal(await s.streamError(), 'invalid-namespace');
  });

  t.test('a DOCTYPE gets restricted-xml', async (t) => {
    const s = await RawStream.open(ts.port);
    s.write("<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>");
    t.equal(await s.streamError(), 'restricted-xml');
  });

  t.test('a comment inside the stream gets restricted-xml', async (t) => {
    const { s } = await RawStream.started(ts.port);
    s.write('<!-- hello -->');
    t.equal(await s.streamError(), 'restricted-xml');
  });

  t.test('malformed XML gets not-well-formed', async (t) => {
    const { s } = await RawStream.started(ts.port);
    s.write('<a></b>');
    t.equal(await s.streamError(), 'not-well-formed');
  });

  t.test('whitespace keepalives are fine', async (t) => {
    const { s } = await RawStream.started(ts.port);
    s.write('   \n  ');
    s.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    t.ok(await s.element('proceed'));
    s.close();
  });

  t.test('the closing handshake', async (t) => {
    const { s } = await RawStream.started(ts.port);
    s.write('</stream:stream>');
    await s.until(() => s.ended);
    t.ok(s.ended, 'the server closed its stream too');
  });
});

t.test('a 1 MB stanza gets policy-violation without the server buffering it', async (t) => {
  const ts = await startTestServer(t);
  await ts.addUser('alice');
  const { s } = await rawLogin(ts.port, 'alice', 'big');
  global.gc?.();
  const before = process.memoryUsage().rss;
  s.write("<message to='alice@localhost'><body>");
  const chunk = 'x'.repeat(64 * 1024);
  let sent = 0;
  while (sent < 1024 * 1024 && !s.closed) {
    s.write(chunk);
    sent += chunk.length;
    await new Promise((r) => setImmediate(r));
  }
  t.equal(await s.streamError(), 'policy-violation');
  const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
  t.ok(grown < 10, `server RSS grew ${grown.toFixed(1)} MB (< 10 MB)`);
});

t.test('shutdown closes streams with system-shutdown', async (t) => {
  const ts = await startTestServer(t);
  await ts.addUser('bob');
  const { s } = await rawLogin(ts.port, 'bob', 'x');
  const stopped = ts.stop();
  t.equal(await s.streamError(), 'system-shutdown');
  await stopped;
  const refused = await RawStream.open(ts.port).then(
    () => false,
    () => true,
  );
  t.ok(refused, 'no longer accepting connections');
});

t.test('limits and timers', async (t) => {
  const ts = await startTestServer(t, { c2s: { idle_ping_interval: 0.3, idle_ping_timeout: 0.3, max_unauthenticated_per_ip: 3 } });
  await ts.addUser('erin');

  t.test('XEP-0478 stream limits are advertised', async (t) => {
    const { s, features } = await RawStream.started(ts.port);
    t.equal(features.getChild('limits', 'urn:xmpp:stream-limits:0')?.getChildText('max-bytes'), '262144');
    s.close();
  });

  t.test('an idle session is pinged, and closed when it does not answer', async (t) => {
    const { s } = await rawLogin(ts.port, 'erin', 'idle');
    const ping = await s.until(() => s.elements.find((e) => e.name === 'iq' && e.getChild('ping', 'urn:xmpp:ping')), 3000);
    t.equal(ping.attrs.type, 'get');
    s.write(`<iq type='result' id='${ping.attrs.id}' to='localhost'/>`);
    s.elements.length = 0;
    const second = await s.until(() => s.elements.find((e) => e.name === 'iq' && e.getChild('ping', 'urn:xmpp:ping')), 3000);
    t.ok(second, 'pinged again after answering');
    t.equal(await s.streamError(3000), 'connection-timeout', 'no answer: closed');
  });

  t.test('at most N unauthenticated connections per IP', async (t) => {
    const open = await Promise.all([1, 2, 3].map(() => RawStream.open(ts.port)));
    for (const s of open) s.header();
    await Promise.all(open.map((s) => s.element('stream:features')));
    const fourth = await RawStream.open(ts.port);
    await fourth.until(() => fourth.closed);
    t.ok(fourth.closed, 'the fourth is dropped');
    open[0]!.close();
    // The server counts it gone when it sees the socket close: until then a new one is refused
    // (it is dropped at once, which is an event too), so try again then, a bounded number of times.
    let again: RawStream | undefined;
    for (let attempt = 0; attempt < 50 && !again; attempt++) {
      const s = await RawStream.open(ts.port);
      s.header();
      const features = await s.until(() => s.elements.find((e) => e.name === 'stream:features') ?? s.closed);
      if (features !== true) again = s;
    }
    t.ok(again, 'a slot is free again');
    // Authenticated streams no longer count: the next tests have the slots.
    const authenticate = async (s: RawStream) => {
      await s.startTls();
      s.header();
      await s.element('stream:features');
      s.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0erin\0${PASSWORD}`).toString('base64')}</auth>`);
      await s.element('success');
    };
    const left = [open[1]!, open[2]!, again!];
    await Promise.all(left.map(authenticate));
    for (const s of left) s.close();
  });

  t.test('the legacy session request is answered', async (t) => {
    const { s } = await rawLogin(ts.port, 'erin', 'legacy');
    s.write("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    t.equal((await s.until(() => s.elements.find((e) => e.attrs.id === 'sess'))).attrs.type, 'result');
    s.close();
  });
});

t.test('a stream restart may not switch host', async (t) => {
  const ts = await startTestServer(t, { hosts: { localhost: {}, 'other.localhost': {} } });
  const s = await RawStream.open(ts.port);
  s.header('localhost');
  await s.element('stream:features');
  await s.startTls();
  s.header('other.localhost');
  t.equal(await s.streamError(), 'host-unknown');
});

t.test('namespace errors close the stream and nothing malformed is relayed', async (t) => {
  const ts = await startTestServer(t);
  await ts.addUser('alice');
  await ts.addUser('bob');

  t.test('an unbound prefix before authentication gets bad-namespace-prefix', async (t) => {
    const { s } = await RawStream.started(ts.port);
    s.write('<p:foo/>');
    t.equal(await s.streamError(), 'bad-namespace-prefix');
  });

  const { s: bob } = await rawLogin(ts.port, 'bob', 'b');
  bob.write('<presence/>');
  const cases: [string, string, string][] = [
    ['an unbound prefix in a payload', '<p:x/>', 'bad-namespace-prefix'],
    ["an undeclared prefix (xmlns:p='')", "<x xmlns:p=''/>", 'not-well-formed'],
    ['two attributes with one expanded name', "<x xmlns='urn:x' xmlns:a='urn:n' xmlns:b='urn:n' a:x='1' b:x='2'/>", 'not-well-formed'],
  ];
  for (const [name, payload, condition] of cases) {
    t.test(name, async (t) => {
      const { s } = await rawLogin(ts.port, 'alice', 'a');
      s.write(`<message to='bob@localhost/b' type='chat' id='bad'>${payload}<body>bad</body></message>`);
      t.equal(await s.streamError(), condition);
    });
  }
  t.test('bob got none of them', async (t) => {
    const { s } = await rawLogin(ts.port, 'alice', 'a');
    s.write("<message to='bob@localhost/b' type='chat' id='good'><body>good</body></message>");
    const got = await bob.until(() => bob.elements.find((e) => e.name === 'message' && e.attrs.id === 'good'));
    t.ok(got, 'a good message arrives');
    t.same(
      bob.elements.filter((e) => e.name === 'message').map((e) => e.attrs.id),
      ['good'],
      'the malformed ones were never relayed',
    );
  });
});
