// The XML stream over a real socket: header checks, restricted XML, size limits, shutdown.
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { rawLogin, RawStream } from '../helpers/clients.js';

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
    const s = await RawStream.open(ts.port);
    s.header();
    await s.element('stream:features');
    s.write('<!-- hello -->');
    t.equal(await s.streamError(), 'restricted-xml');
  });

  t.test('malformed XML gets not-well-formed', async (t) => {
    const s = await RawStream.open(ts.port);
    s.header();
    await s.element('stream:features');
    s.write('<a></b>');
    t.equal(await s.streamError(), 'not-well-formed');
  });

  t.test('whitespace keepalives are fine', async (t) => {
    const s = await RawStream.open(ts.port);
    s.header();
    await s.element('stream:features');
    s.write('   \n  ');
    s.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    t.ok(await s.element('proceed'));
    s.close();
  });

  t.test('the closing handshake', async (t) => {
    const s = await RawStream.open(ts.port);
    s.header();
    await s.element('stream:features');
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
