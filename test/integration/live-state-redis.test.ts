// Redis unreachable or lost: `starling check` and `start` say so in one line within seconds;
// a running server whose Redis goes away fails requests cleanly, without unhandled rejections.
import net from 'node:net';
import t from 'tap';
import { closedPort, configDir, loopbackServicesToml, runStarling } from '../helpers/cli.js';
import { startTestServer } from '../helpers/harness.js';
import { RawStream, rawLogin } from '../helpers/clients.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';

t.test('an unreachable Redis: check and start fail with one line, without hanging', async (t) => {
  const url = `redis://127.0.0.1:${await closedPort()}`;
  const { config } = configDir(
    t,
    'redis',
    (dir) => `data_dir = "${dir}/data"
[live_state]
backend = "redis"
redis_url = "${url}"
[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
[s2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
${loopbackServicesToml()}`,
  );
  const line = new RegExp(`live state \\(redis ${url.replace(/[.]/g, '\\.')}\\): unreachable`);
  // Before, both retried forever: the timeout kills them (code null).
  for (const command of ['check', 'start']) {
    const r = runStarling([command, '--config', config], { timeoutMs: 60_000 });
    t.not(r.code, null, `${command} ended on its own (after ${r.ms} ms)`);
    t.not(r.code, 0, `${command}: non-zero exit`);
    t.match(r.err, line, `${command}: ${r.err}`);
    t.notMatch(r.err, /ioredis|\n\s+at /, `${command}: no retries printed, no stack trace`);
  }
});

t.test('Redis lost while running: requests fail cleanly, no unhandled rejection', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  const target = new URL(REDIS_URL);
  // A TCP proxy in front of Redis, cut in the middle of the test.
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const cut = () => {
    proxy.close();
    for (const s of sockets) s.destroy();
  };
  t.teardown(cut);
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => process.off('unhandledRejection', onRejection));

  const proxyUrl = `redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}${target.pathname}`;
  const ts = await startTestServer(t, { live_state: { backend: 'redis', redis_url: proxyUrl } });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const { s: alice } = await rawLogin(ts.port, 'alice', 'a');
  alice.write('<presence/>');
  cut();

  // A login needs Redis (authentication-failure counters, the session directory): it fails
  // with an answer or a closed stream, it does not hang.
  const bob = await RawStream.open(ts.port);
  bob.header();
  await bob.element('stream:features');
  await bob.startTls();
  bob.header();
  await bob.element('stream:features');
  bob.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0bob\0wrong password').toString('base64')}</auth>`);
  const outcome = await bob.until(() => bob.elements.find((e) => e.name === 'failure' || e.name === 'success' || e.name === 'stream:error') ?? (bob.ended && 'closed'), 20_000);
  t.ok(outcome, `the login got an answer: ${typeof outcome === 'string' ? outcome : outcome.toString()}`);
  // Leaving updates the session directory: a failure there is handled too.
  alice.write('</stream:stream>');
  await alice.until(() => alice.ended, 20_000);
  await ts.stop();
  t.same(rejections.map(String), [], 'no unhandled promise rejection');
});
