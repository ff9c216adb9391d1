// Prometheus metrics at /metrics over real sockets: the session gauge follows the sessions
// that are really there, logins and authentication failures are counted by mechanism, routed
// stanzas by kind; addresses outside metrics.allow (also when forwarded by a proxy) get 403.
import t from 'tap';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, xml } from '../helpers/clients.js';
import { RawWebSocket, wsLogin } from '../helpers/websocket.js';

/** The samples of a Prometheus text exposition: `name{labels}` -> value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of the samples whose name and labels start with `prefix`. */
const sum = (samples: Map<string, number>, prefix: string) => [...samples].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);

const plainUrl = (ts: TestServer) => `http://127.0.0.1:${ts.server.core.http.addresses.find((a) => !a.secure)!.port}/metrics`;

async function scrape(ts: TestServer): Promise<Map<string, number>> {
  const res = await fetch(plainUrl(ts));
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parse(await res.text());
}

t.test('metrics follow sessions, logins, failures and routed stanzas', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence'] });
  for (const u of ['alice', 'bob']) await ts.addUser(u);
  const res = await fetch(plainUrl(ts));
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/, 'Prometheus text format');
  const empty = parse(await res.text());
  t.equal(empty.get('starling_c2s_sessions{transport="tcp"}') ?? 0, 0, 'no session yet');
  t.ok(empty.has('starling_process_cpu_seconds_total'), 'process metrics');
  t.ok(empty.has('starling_nodejs_eventloop_lag_seconds'), 'event-loop lag');
  t.ok(empty.has('starling_eventloop_lag_p99_seconds'), 'event-loop lag beyond the sampling interval');

  const alice = await connect(ts, 'alice');
  const bob = await connect(ts, 'bob');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  await t.rejects(connect(ts, 'alice', { password: 'wrong-password' }), 'a login with a wrong password fails');

  const routedBefore = (await scrape(ts)).get('starling_stanzas_routed_total{kind="message"}') ?? 0;
  await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'hi')));
  await bob.next((el) => el.name === 'message' && el.getChildText('body') === 'hi');
  const m = await scrape(ts);
  t.equal(m.get('starling_c2s_sessions{transport="tcp"}'), 2, 'two sessions, as there are');
  t.equal(sum(m, 'starling_logins_total{mechanism="SCRAM-'), 2, 'two logins, by their SCRAM mechanism');
  t.equal(sum(m, 'starling_auth_failures_total{mechanism="SCRAM-'), 1, 'one failure');
  t.equal(m.get('starling_stanzas_routed_total{kind="message"}'), routedBefore + 1, 'the message routed is counted');

  const web = await RawWebSocket.connect(`ws://127.0.0.1:${ts.server.core.http.addresses.find((a) => !a.secure)!.port}/xmpp-websocket`);
  t.teardown(() => web.cut());
  await wsLogin(web, 'alice', 'browser');
  const withWeb = await scrape(ts);
  t.equal(withWeb.get('starling_c2s_sessions{transport="websocket"}'), 1, 'a WebSocket session is counted as such');
  t.equal(withWeb.get('starling_c2s_sessions{transport="tcp"}'), 2, 'beside the two over TCP');

  await bob.stop();
  await alice.roundTrip();
  t.equal((await scrape(ts)).get('starling_c2s_sessions{transport="tcp"}'), 1, 'one session once bob is gone');
});

t.test('only the allowed addresses read them', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], metrics: { allow: ['127.0.0.1'] } });
  const forwarded = await fetch(plainUrl(ts), { headers: { 'X-Forwarded-For': '203.0.113.9' } });
  t.equal(forwarded.status, 403, 'a client behind the reverse proxy (X-Forwarded-For) is refused');
  const other = await startTestServer(t, { modules_enabled: ['sasl'], metrics: { allow: ['192.0.2.1'] } });
  t.equal((await fetch(plainUrl(other))).status, 403, 'loopback is refused when not allowed');
  const off = await startTestServer(t, { modules_enabled: ['sasl'], metrics: { enabled: false } });
  t.equal((await fetch(plainUrl(off))).status, 404, 'and nothing is served when metrics are off');
});

t.test('event-loop lag: the delay beyond the sampling interval, since the last scrape', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco'] });
  await scrape(ts);
  // A few ticks first: the histogram's first tick after a reset only starts its clock.
  await new Promise((resolve) => setTimeout(resolve, 50));
  // The server runs in this process: a busy loop here blocks its event loop.
  const until = Date.now() + 120;
  while (Date.now() < until);
  await new Promise((resolve) => setTimeout(resolve, 60));
  const blocked = await scrape(ts);
  t.ok(blocked.get('starling_eventloop_lag_max_seconds')! >= 0.1, `a 120 ms block is seen (max ${blocked.get('starling_eventloop_lag_max_seconds')} s)`);
  t.ok(blocked.get('starling_eventloop_lag_p50_seconds')! < 0.05, 'most ticks were on time');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = await scrape(ts);
  t.ok(after.get('starling_eventloop_lag_max_seconds')! < 0.1, `the next scrape starts afresh (max ${after.get('starling_eventloop_lag_max_seconds')} s)`);
});
