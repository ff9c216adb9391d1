// The server's idle ping is a stanza like any other: a client with stream management (XEP-0198)
// counts it, acknowledges it with the right h, keeps its stream, and resumes with that h. (The
// ping used to be written around the outbound pipeline, so the client's ack of it ended the
// stream with undefined-condition, as Conversations saw after five idle minutes.)
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { rawAuthenticated, rawLogin, type RawStream } from '../helpers/clients.js';

const SM = 'urn:xmpp:sm:3';
const PING = 'urn:xmpp:ping';

const isPing = (e: Element) => e.name === 'iq' && e.attrs.type === 'get' && e.getChild('ping', PING) !== undefined;

/** Takes the server's ping off the list once it arrives. */
async function serverPing(s: RawStream): Promise<Element> {
  return s.until(() => {
    const i = s.elements.findIndex(isPing);
    return i === -1 ? undefined : s.elements.splice(i, 1)[0];
  }, 10_000);
}

/** A round trip: the server's answer to <r/> says how many stanzas it handled. */
async function serverAck(s: RawStream): Promise<Element> {
  s.write(`<r xmlns='${SM}'/>`);
  return s.element('a');
}

t.test('an idle client with stream management answers the ping and keeps its stream', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm'],
    c2s: { idle_ping_interval: 1, idle_ping_timeout: 30 },
    modules: { sm: { resume_timeout: 60 } },
  });
  await ts.addUser('carol');

  const { s } = await rawLogin(ts.port, 'carol', 'phone');
  s.write(`<enable xmlns='${SM}' resume='true'/>`);
  const previd = (await s.element('enabled')).attrs.id!;

  const ping = await serverPing(s);
  t.equal(ping.attrs.to, 'carol@localhost/phone', 'the ping is addressed to the idle resource');
  s.write(`<iq type='result' id='${ping.attrs.id}' to='${ping.attrs.from}'/>`);
  // The ping was the first stanza the server sent since <enable/>.
  s.write(`<a xmlns='${SM}' h='1'/>`);
  const a = await serverAck(s);
  t.equal(a.attrs.h, '1', 'the server counts the reply to its ping as handled');
  t.notOk(
    s.elements.some((e) => e.name === 'stream:error'),
    'no stream error after acknowledging the ping',
  );
  t.notOk(s.closed, 'the stream is still open');

  // The connection drops; the client resumes with the h it acknowledged.
  s.close();
  const fresh = await rawAuthenticated(ts.port, 'carol');
  fresh.write(`<resume xmlns='${SM}' previd='${previd}' h='1'/>`);
  const resumed = await fresh.element('resumed');
  t.equal(resumed.attrs.h, '1', 'the server handled the one stanza the client sent');
  const after = await serverAck(fresh);
  t.equal(after.attrs.h, '1', 'the resumed stream goes on counting');
  t.notOk(
    fresh.elements.some((e) => isPing(e) && e.attrs.id === ping.attrs.id),
    'the acknowledged ping is not sent again',
  );
  fresh.write('</stream:stream>');
});
