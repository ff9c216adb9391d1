// Nothing acknowledged is lost: a message the server acknowledged (XEP-0198 <a h/>) for an
// offline user survives a kill -9 of the server right after, and is delivered after a restart.
import t from 'tap';
import { rawAuthenticated, rawLogin } from '../helpers/clients.js';
import { LOOPBACK_HTTP_TOML, configDir, runStarling, startStarling } from '../helpers/cli.js';

const SM = 'urn:xmpp:sm:3';

/** A configuration in a temporary directory (removed after the test); returns its path. */
function configIn(t: { teardown(fn: () => void): void }): string {
  return configDir(
    t,
    'durability',
    (dir) => `data_dir = "${dir}/data"
modules_enabled = ["sasl", "ping", "disco", "roster", "presence", "offline", "sm"]
[log]
format = "json"
[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
${LOOPBACK_HTTP_TOML}`,
  ).config;
}

/** Creates an account with the CLI, as an operator would. */
function adduser(config: string, user: string): { status: number | null; stderr: string } {
  const r = runStarling(['adduser', `${user}@localhost`, '--config', config], { input: 'correct horse battery\n' });
  return { status: r.code, stderr: r.err };
}

t.test('an acknowledged message to an offline user survives kill -9', async (t) => {
  const config = configIn(t);

  const first = await startStarling(config);
  t.teardown(() => void first.child.kill('SIGKILL'));
  // Accounts through the running server's own database, with the CLI.
  for (const user of ['alice', 'bob']) {
    const r = adduser(config, user);
    t.equal(r.status, 0, r.stderr);
  }

  const { s: alice } = await rawLogin(first.port, 'alice', 'desk');
  alice.write(`<enable xmlns='${SM}'/>`);
  await alice.element('enabled');
  alice.write("<message to='bob@localhost' type='chat' id='precious'><body>do not lose me</body></message>");
  alice.write(`<r xmlns='${SM}'/>`);
  const ack = await alice.element('a');
  t.equal(ack.attrs.h, '1', 'the server acknowledged the message');
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));

  const second = await startStarling(config);
  t.teardown(() => void second.child.kill('SIGTERM'));
  const bob = await rawAuthenticated(second.port, 'bob');
  bob.write("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
  await bob.element('iq');
  bob.write('<presence/>');
  const message = await bob.until(() => bob.elements.find((e) => e.name === 'message' && e.attrs.id === 'precious'));
  t.equal(message.getChildText('body'), 'do not lose me', 'delivered after the restart');
  t.ok(message.getChild('delay', 'urn:xmpp:delay'), 'with its delay stamp');
  bob.close();
});

t.test("a kept session's queue survives kill -9: delivered at the next login, with the original time", async (t) => {
  const config = configIn(t);
  for (const user of ['dave', 'erin']) {
    const r = adduser(config, user);
    t.equal(r.status, 0, r.stderr);
  }
  const first = await startStarling(config);
  t.teardown(() => void first.child.kill('SIGKILL'));

  const { s: erin } = await rawLogin(first.port, 'erin', 'phone');
  erin.write('<presence/>');
  erin.write(`<enable xmlns='${SM}' resume='true'/>`);
  await erin.element('enabled');
  const { s: dave } = await rawLogin(first.port, 'dave', 'desk');
  dave.write(`<enable xmlns='${SM}'/>`);
  await dave.element('enabled');

  // One message reaches the live phone and is never acknowledged; the connection drops.
  const before = Date.now();
  dave.write("<message to='erin@localhost/phone' type='chat' id='live'><body>seen, not acked</body></message>");
  await erin.until(() => erin.elements.find((e) => e.name === 'message' && e.attrs.id === 'live'));
  erin.close();
  await new Promise((r) => setTimeout(r, 300));
  // Two more go into the kept session's queue; the server acknowledges them to the sender.
  dave.write("<message to='erin@localhost/phone' type='chat' id='kept1'><body>queued one</body></message>");
  dave.write("<message to='erin@localhost' type='chat' id='kept2'><body>queued two</body></message>");
  dave.write(`<r xmlns='${SM}'/>`);
  t.equal((await dave.element('a')).attrs.h, '3', 'the server acknowledged all three');
  const acked = Date.now();
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));

  const second = await startStarling(config);
  t.teardown(() => void second.child.kill('SIGTERM'));
  const { s: later } = await rawLogin(second.port, 'erin', 'later');
  later.write('<presence/>');
  const ids = ['live', 'kept1', 'kept2'];
  await later.until(() => ids.every((id) => later.elements.some((e) => e.name === 'message' && e.attrs.id === id)));
  const messages = later.elements.filter((e) => e.name === 'message');
  t.same(
    messages.map((m) => m.attrs.id),
    ids,
    'each once, in order',
  );
  for (const m of messages) {
    const stamp = Date.parse(m.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp ?? '');
    t.ok(stamp >= before - 1000 && stamp <= acked + 1000, `${m.attrs.id}: the delay is when the server received it`);
  }
  later.close();
  dave.close();
});

t.test('after a graceful restart a client that tries to resume learns its h', async (t) => {
  const config = configIn(t);
  const r = adduser(config, 'carol');
  t.equal(r.status, 0, r.stderr);

  const first = await startStarling(config);
  const { s } = await rawLogin(first.port, 'carol', 'phone');
  s.write(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await s.element('enabled');
  for (let i = 0; i < 3; i++) s.write(`<message to='nobody@localhost' type='headline'><body>${i}</body></message>`);
  s.write(`<r xmlns='${SM}'/>`);
  t.equal((await s.element('a')).attrs.h, '3');
  first.child.kill('SIGTERM');
  t.equal(await s.streamError(), 'system-shutdown');
  await new Promise((resolve) => first.child.once('exit', resolve));

  const second = await startStarling(config);
  t.teardown(() => void second.child.kill('SIGTERM'));
  const again = await rawAuthenticated(second.port, 'carol');
  again.write(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
  const failed = await again.element('failed');
  t.equal(failed.attrs.h, '3', 'h from before the restart');
  again.close();
});
