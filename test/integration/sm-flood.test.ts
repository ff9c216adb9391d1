// XEP-0198: a kept session flooded far past its queue limit. Every message beyond the limit is
// stored offline or bounced to its sender, none silently dropped, and the session stays kept.
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { rawAuthenticated, rawLogin } from '../helpers/clients.js';

const SM = 'urn:xmpp:sm:3';
const SENT = 3000;

t.test('flooding a kept session: delivered after login + bounced == sent', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm'],
    modules: { sm: { resume_timeout: 60, max_queue: 50, request_ack_every: 100 }, offline: { max_messages: 200 } },
  });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const phone = (await rawLogin(ts.port, 'bob', 'phone')).s;
  phone.write('<presence/>');
  phone.write(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await phone.element('enabled');
  phone.close(); // kept for resumption
  await new Promise((r) => setTimeout(r, 300));

  const alice = (await rawLogin(ts.port, 'alice', 'flood')).s;
  const started = Date.now();
  let batch = '';
  for (let i = 0; i < SENT; i++) batch += `<message to='bob@localhost/phone' type='chat' id='f${i}'><body>${i}</body></message>`;
  alice.write(batch);
  // A client's stanzas are handled in order: the answer to this ping comes after every message.
  alice.write("<iq type='get' id='flooded'><ping xmlns='urn:xmpp:ping'/></iq>");
  await alice.until(() => alice.elements.find((e) => e.name === 'iq' && e.attrs.id === 'flooded'), 60_000);
  const bounced = new Set<string>();
  for (const e of alice.elements) if (e.name === 'message' && e.attrs.type === 'error') bounced.add(e.attrs.id!);
  t.comment(`${SENT} messages handled in ${Date.now() - started} ms, ${bounced.size} bounced`);

  const later = (await rawLogin(ts.port, 'bob', 'later')).s;
  later.write('<presence/>');
  later.write("<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>");
  await later.until(() => later.elements.find((e) => e.name === 'iq' && e.attrs.id === 'done'));
  // The kept session outlived the flood; resuming it now sends nothing the login got already.
  const resumed = await rawAuthenticated(ts.port, 'bob');
  resumed.write(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
  t.ok(await resumed.element('resumed'), 'the kept session is still there');
  resumed.write("<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>");
  await resumed.until(() => resumed.elements.find((e) => e.name === 'iq' && e.attrs.id === 'done'));
  const delivered = [...later.elements, ...resumed.elements].filter((e) => e.name === 'message').map((e) => e.attrs.id!);
  t.equal(new Set(delivered).size, delivered.length, 'none delivered twice');
  t.notOk(
    delivered.some((id) => bounced.has(id)),
    'none both bounced and delivered',
  );
  t.equal(delivered.length + bounced.size, SENT, 'delivered + bounced == sent');
  for (const s of [alice, later, resumed]) s.close();
});
