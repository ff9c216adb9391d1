// SASL2 (XEP-0388) with Bind 2 (XEP-0386) and FAST (XEP-0484, HT-SHA-256-NONE), over real
// sockets: a raw stream with a SCRAM and HT client written here (apart from the server's code),
// and @xmpp/client for interoperability.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN, PASSWORD, type TestServer } from '../helpers/harness.js';
import { RawStream, xmppClient } from '../helpers/clients.js';
import { scramClient } from '../helpers/scram-client.js';
import { FastTokenStore } from '../../modules/sasl/fast-store.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const SASL2 = 'urn:xmpp:sasl:2';
const BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const BIND2 = 'urn:xmpp:bind:0';
const FAST = 'urn:xmpp:fast:0';
const HT = 'HT-SHA-256-NONE';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** A direct-TLS (XEP-0368) stream, header sent, pre-auth features read. */
function secured(ts: TestServer): Promise<{ s: RawStream; features: Element }> {
  return RawStream.started(ts.tlsPort, true);
}

/** The next SASL2 element (challenge, success or failure), off the list. */
async function sasl2Reply(s: RawStream): Promise<Element> {
  const el = await s.until(() => s.elements.find((e) => e.attrs.xmlns === SASL2));
  s.elements.splice(s.elements.indexOf(el), 1);
  return el;
}

/** The SASL condition of a SASL2 <failure/>. */
function condition(failure: Element): string | undefined {
  return failure.getChildElements().find((c) => c.attrs.xmlns === SASL)?.name;
}

/** SASL2 SCRAM (RFC 5802 / 7677) without channel binding; `extra` goes into <authenticate/>. */
async function scram2(s: RawStream, o: { mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256'; username: string; password: string; extra?: string }) {
  const scram = scramClient(o);
  s.write(`<authenticate xmlns='${SASL2}' mechanism='${o.mechanism}'><initial-response>${b64(scram.clientFirst)}</initial-response>${o.extra ?? ''}</authenticate>`);
  const challenge = await sasl2Reply(s);
  if (challenge.name !== 'challenge') return { result: challenge, serverSignatureOk: false };
  s.write(`<response xmlns='${SASL2}'>${b64(scram.final(Buffer.from(challenge.getText(), 'base64').toString()))}</response>`);
  const result = await sasl2Reply(s);
  const serverSignatureOk = result.name === 'success' && scram.verify(Buffer.from(result.getChildText('additional-data') ?? '', 'base64').toString());
  return { result, serverSignatureOk };
}

const userAgent = (id: string) => `<user-agent id='${id}'><software>Starling tests</software><device>CI</device></user-agent>`;

/** SASL2 PLAIN with a token request: the token (or undefined) and the result. */
async function plainWithToken(ts: TestServer, local: string, uaId: string, extra = '') {
  const { s } = await secured(ts);
  s.write(
    `<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${b64(`\0${local}\0${PASSWORD}`)}</initial-response>` +
      `${userAgent(uaId)}<request-token xmlns='${FAST}' mechanism='${HT}'/>${extra}</authenticate>`,
  );
  const result = await sasl2Reply(s);
  const token = result.getChild('token', FAST);
  return { s, result, token: token?.attrs.token, expiry: token?.attrs.expiry };
}

/** The HT initiator message (draft-schmaus-kitten-sasl-ht): authcid NUL HMAC(token, "Initiator"), cb-data empty. */
function htInitiator(username: string, token: string): Buffer {
  return Buffer.concat([Buffer.from(`${username}\0`), createHmac('sha256', Buffer.from(token, 'utf8')).update('Initiator').digest()]);
}

/** A FAST authentication on a new stream; `fast` is the <fast/> element's attributes as written. */
async function fastLogin(ts: TestServer, local: string, uaId: string | undefined, token: string, o: { fast?: string; extra?: string; mechanism?: string } = {}) {
  const { s } = await secured(ts);
  s.write(
    `<authenticate xmlns='${SASL2}' mechanism='${o.mechanism ?? HT}'><initial-response>${b64(htInitiator(local, token))}</initial-response>` +
      `${uaId ? userAgent(uaId) : ''}<fast xmlns='${FAST}' ${o.fast ?? ''}/>${o.extra ?? ''}</authenticate>`,
  );
  const result = await sasl2Reply(s);
  return { s, result };
}

t.test('SASL2, Bind 2 and FAST', async (t) => {
  const ts = await startTestServer(t, { c2s: { auth_failures_per_ip_per_minute: 1000 } });
  await ts.addUser('alice');
  await ts.addUser('bob');

  t.test('the <authentication/> feature: after TLS only, with Bind 2 and FAST inline', async (t) => {
    const plain = await RawStream.open(ts.port);
    plain.header();
    const before = await plain.element('stream:features');
    t.notOk(before.getChild('authentication', SASL2), 'no SASL2 before TLS');
    plain.close();

    const { s, features } = await secured(ts);
    const auth = features.getChild('authentication', SASL2);
    t.ok(auth, 'SASL2 offered over TLS');
    const mechanisms = auth!.getChildren('mechanism').map((m) => m.getText());
    t.ok(mechanisms.includes('SCRAM-SHA-256') && mechanisms.includes('SCRAM-SHA-1-PLUS') && mechanisms.includes('PLAIN'), 'the mechanisms of the stream');
    t.notOk(mechanisms.includes(HT), 'HT is offered inside <fast/> only');
    const inline = auth!.getChild('inline', SASL2)!;
    t.ok(inline.getChild('bind', BIND2)?.getChild('inline', BIND2), "<bind xmlns='urn:xmpp:bind:0'><inline/></bind>");
    t.same(
      inline
        .getChild('fast', FAST)
        ?.getChildren('mechanism')
        .map((m) => m.getText()),
      [HT],
      '<fast/> with HT-SHA-256-NONE',
    );
    t.ok(features.getChild('mechanisms', SASL), 'RFC 6120 SASL is still offered');
    s.close();
  });

  t.test('SCRAM-SHA-256 with an inline Bind 2 request: full JID, no restart, a working session', async (t) => {
    const { s } = await secured(ts);
    const { result, serverSignatureOk } = await scram2(s, {
      mechanism: 'SCRAM-SHA-256',
      username: 'alice',
      password: PASSWORD,
      extra: `${userAgent(randomUUID())}<bind xmlns='${BIND2}'><tag>Conversations.abcd</tag></bind>`,
    });
    t.equal(result.name, 'success');
    t.ok(serverSignatureOk, '<additional-data/> carries the SCRAM server signature');
    const jid = result.getChildText('authorization-identifier')!;
    t.match(jid, /^alice@localhost\/Conversations\.abcd\/[A-Za-z0-9_-]+$/, 'authorization-identifier: the full JID, tag then a generated part');
    t.ok(result.getChild('bound', BIND2), '<bound/> in <success/>');
    const features = await s.element('stream:features');
    t.notOk(features.getChild('bind', BIND), 'no RFC 6120 bind offered: bound already');
    t.equal(s.headers.length, 1, 'no stream restart');
    s.write(`<iq type='get' id='p1' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const pong = await s.element('iq');
    t.equal(pong.attrs.type, 'result', 'the session answers stanzas');
    t.equal(pong.attrs.to, jid, 'addressed to the bound full JID');
    s.close();
  });

  t.test('without Bind 2: the bare JID, then RFC 6120 binding is offered', async (t) => {
    const { s } = await secured(ts);
    const { result } = await scram2(s, { mechanism: 'SCRAM-SHA-1', username: 'alice', password: PASSWORD });
    t.equal(result.name, 'success');
    t.equal(result.getChildText('authorization-identifier'), 'alice@localhost', 'a bare JID');
    t.notOk(result.getChild('bound', BIND2));
    const features = await s.element('stream:features');
    t.ok(features.getChild('bind', BIND), 'bind offered without a restart');
    s.write(`<iq type='set' id='b1'><bind xmlns='${BIND}'><resource>legacy</resource></bind></iq>`);
    t.equal((await s.element('iq')).getChild('bind', BIND)?.getChildText('jid'), 'alice@localhost/legacy');
    s.write(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${b64(`\0alice\0${PASSWORD}`)}</initial-response></authenticate>`);
    t.equal(await s.streamError(), 'policy-violation', 'a second <authenticate/> is a stream error');
    s.close();
  });

  t.test('wrong password: failure with not-authorized; the stream can try again', async (t) => {
    const { s } = await secured(ts);
    const { result } = await scram2(s, { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'not the password' });
    t.equal(result.name, 'failure');
    t.equal(condition(result), 'not-authorized', `<not-authorized xmlns='${SASL}'/>`);
    const again = await scram2(s, { mechanism: 'SCRAM-SHA-256', username: 'alice', password: PASSWORD });
    t.equal(again.result.name, 'success', 'a second attempt on the same stream');
    s.close();
  });

  t.test('unknown mechanism, abort, and HT over RFC 6120 SASL are refused', async (t) => {
    const { s } = await secured(ts);
    s.write(`<authenticate xmlns='${SASL2}' mechanism='DIGEST-MD5'/>`);
    t.equal(condition(await sasl2Reply(s)), 'invalid-mechanism');
    s.write(`<authenticate xmlns='${SASL2}' mechanism='SCRAM-SHA-256'/>`);
    t.equal((await sasl2Reply(s)).name, 'challenge', 'no initial response: an empty challenge');
    s.write(`<abort xmlns='${SASL2}'/>`);
    t.equal(condition(await sasl2Reply(s)), 'aborted');
    s.write(`<auth xmlns='${SASL}' mechanism='${HT}'>${b64(htInitiator('alice', 'x'.repeat(86)))}</auth>`);
    t.ok((await s.element('failure')).getChild('invalid-mechanism'), 'FAST is SASL2 only');
    s.close();
  });

  t.test('FAST with @xmpp/client: a token after a password login, then a login with the token alone', async (t) => {
    const ua = xml('user-agent', { id: randomUUID() }, xml('software', {}, 'xmpp.js'));
    const first = xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: DOMAIN, username: 'bob', password: PASSWORD, resource: 'xmppjs', userAgent: ua });
    first.reconnect?.stop?.();
    first.on('error', () => {});
    const sent: Element[] = [];
    first.on('send', (el: Element) => sent.push(el));
    const address = await first.start();
    t.match(address.toString(), /^bob@localhost\/xmppjs\/.+$/, 'bound with Bind 2, tag first');
    const authenticate = sent.find((el) => el.name === 'authenticate')!;
    t.equal(authenticate.attrs.mechanism, 'SCRAM-SHA-1', 'the password login (SCRAM-SHA-1 is what xmpp.js has)');
    t.ok(authenticate.getChild('request-token', FAST), 'it asked for a token');
    const token = await first.fast.fetchToken();
    if (!token) return t.fail('a token came in <success/>');
    t.ok(token.token, 'a token came in <success/>');
    t.equal(token.mechanism, HT);
    const days = (new Date(token.expiry).getTime() - Date.now()) / 86_400_000;
    t.ok(days > 13.9 && days <= 14, 'expiry: 14 days (fast_token_ttl default)');
    await first.stop();

    // Same client installation (same user-agent id), the token but a wrong password.
    const second = xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: DOMAIN, username: 'bob', password: 'wrong password', resource: 'xmppjs', userAgent: ua });
    second.reconnect?.stop?.();
    second.on('error', () => {});
    second.fast.fetchToken = async () => token;
    const sent2: Element[] = [];
    second.on('send', (el: Element) => sent2.push(el));
    const address2 = await second.start();
    t.match(address2.toString(), /^bob@localhost\/xmppjs\/.+$/, 'logged in with the token');
    t.not(address2.toString(), address.toString(), 'a new generated part');
    const fastAuth = sent2.find((el) => el.name === 'authenticate')!;
    t.equal(fastAuth.attrs.mechanism, HT, 'authenticated with HT-SHA-256-NONE');
    t.ok(fastAuth.getChild('fast', FAST), 'with <fast/>');
    await second.stop();

    // A wrong token: rejected; xmpp.js then falls back to its password, and gets a new token.
    const third = xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: DOMAIN, username: 'bob', password: PASSWORD, userAgent: ua });
    third.reconnect?.stop?.();
    third.on('error', () => {});
    third.fast.fetchToken = async () => ({ ...token, token: randomBytes(64).toString('base64url') });
    const received: Element[] = [];
    third.on('element', (el: Element) => received.push(el));
    await third.start();
    const failure = received.find((el) => el.name === 'failure' && el.attrs.xmlns === SASL2);
    t.ok(failure && condition(failure) === 'not-authorized', 'the wrong token got <failure><not-authorized/></failure>');
    const fresh = await third.fast.fetchToken();
    t.ok(fresh?.token && fresh.token !== token.token, 'the password login that followed got a fresh token');
    await third.stop();
  });

  t.test('FAST on the wire: wrong token, other client, rotation, count, invalidation', async (t) => {
    const ua = randomUUID();
    const issued = await plainWithToken(ts, 'alice', ua);
    t.equal(issued.result.name, 'success');
    t.ok(issued.token && issued.token.length >= 86, 'a long random token');
    t.match(issued.expiry, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'expiry: XEP-0082 DateTime');
    issued.s.close();
    const t1 = issued.token!;

    const wrong = await fastLogin(ts, 'alice', ua, randomBytes(64).toString('base64url'));
    t.equal(condition(wrong.result), 'not-authorized', 'a wrong token fails');
    wrong.s.close();
    const otherClient = await fastLogin(ts, 'alice', randomUUID(), t1);
    t.equal(condition(otherClient.result), 'not-authorized', 'the token of another user-agent id fails');
    otherClient.s.close();
    const otherUser = await fastLogin(ts, 'bob', ua, t1);
    t.equal(condition(otherUser.result), 'not-authorized', "another user's name fails");
    otherUser.s.close();
    const noFast = await secured(ts);
    noFast.s.write(`<authenticate xmlns='${SASL2}' mechanism='${HT}'><initial-response>${b64(htInitiator('alice', t1))}</initial-response>${userAgent(ua)}</authenticate>`);
    t.equal(condition(await sasl2Reply(noFast.s)), 'invalid-mechanism', 'HT without <fast/> fails');
    noFast.s.close();

    // Use t1, asking for a new token: t1 stays valid until t2 is used.
    const rotate = await fastLogin(ts, 'alice', ua, t1, { fast: "count='1'", extra: `<request-token xmlns='${FAST}' mechanism='${HT}'/>` });
    t.equal(rotate.result.name, 'success', 'FAST login with the token');
    t.equal(rotate.result.getChildText('authorization-identifier'), 'alice@localhost');
    const expectedResponder = createHmac('sha256', Buffer.from(t1)).update('Responder').digest();
    t.same(Buffer.from(rotate.result.getChildText('additional-data')!, 'base64'), expectedResponder, 'additional-data: HMAC(token, "Responder")');
    const t2 = rotate.result.getChild('token', FAST)?.attrs.token;
    t.ok(t2 && t2 !== t1, 'a new token when asked during a FAST login');
    rotate.s.close();

    const replay = await fastLogin(ts, 'alice', ua, t1, { fast: "count='1'" });
    t.equal(condition(replay.result), 'not-authorized', 'a count not above the last one is refused');
    replay.s.close();
    const oldStill = await fastLogin(ts, 'alice', ua, t1, { fast: "count='2'" });
    t.equal(oldStill.result.name, 'success', 'the old token works until the new one is used');
    t.notOk(oldStill.result.getChild('token', FAST), 'no token unasked while the old one is young');
    oldStill.s.close();
    const useNew = await fastLogin(ts, 'alice', ua, t2!, { extra: `<bind xmlns='${BIND2}'><tag>fast</tag></bind>` });
    t.equal(useNew.result.name, 'success', 'the new token works');
    t.match(useNew.result.getChildText('authorization-identifier'), /^alice@localhost\/fast\//, 'Bind 2 with FAST');
    useNew.s.close();
    const oldGone = await fastLogin(ts, 'alice', ua, t1);
    t.equal(condition(oldGone.result), 'not-authorized', 'the old token is gone once the new one was used');
    oldGone.s.close();

    // Invalidation.
    const invalidate = await fastLogin(ts, 'alice', ua, t2!, { fast: "invalidate='true'" });
    t.equal(invalidate.result.name, 'success', 'a FAST login that invalidates its token');
    t.notOk(invalidate.result.getChild('token', FAST), 'no new token after invalidation');
    invalidate.s.close();
    const after = await fastLogin(ts, 'alice', ua, t2!);
    t.equal(condition(after.result), 'not-authorized', 'the invalidated token fails');
    after.s.close();
  });

  t.test('an expired token fails with credentials-expired; an old one is rotated', async (t) => {
    const ts2 = await startTestServer(t, { modules: { sasl: { fast_token_ttl: 60 } } });
    await ts2.addUser('carol');
    const ua = randomUUID();
    const issued = await plainWithToken(ts2, 'carol', ua);
    issued.s.close();
    // Age the stored token by rewriting its times, as if it had been issued long ago.
    const db = ts2.server.core.storage.db;
    const age = async (ms: number) => {
      const row = await db.selectFrom('user_data').select(['key', 'value']).where('store', '=', 'credential:fast').where('username', '=', 'carol').executeTakeFirstOrThrow();
      const value = JSON.parse(row.value);
      let latest = 0;
      for (const slot of ['current', 'new']) if (value[slot]) latest = Math.max(latest, (value[slot].expiresAt -= ms));
      await db
        .updateTable('user_data')
        .set({ value: JSON.stringify(value), expires_at: latest })
        .where('key', '=', row.key)
        .execute();
    };
    await age(40_000); // 20 s left of 60: under half, so due for rotation
    const rotated = await fastLogin(ts2, 'carol', ua, issued.token!);
    t.equal(rotated.result.name, 'success');
    const t2 = rotated.result.getChild('token', FAST)?.attrs.token;
    t.ok(t2, 'the server rotated the token unasked');
    rotated.s.close();
    await age(3_600_000);
    const expired = await fastLogin(ts2, 'carol', ua, t2!);
    t.equal(condition(expired.result), 'credentials-expired', 'an expired token: credentials-expired');
    expired.s.close();
    const store = new FastTokenStore(ts2.server.core.storage);
    t.equal(await store.purgeExpired(DOMAIN), 1, 'the expired row is purged');

    const again = await plainWithToken(ts2, 'carol', ua);
    again.s.close();
    const rows = () => db.selectFrom('user_data').select('key').where('store', '=', 'credential:fast').where('username', '=', 'carol').execute();
    t.equal((await rows()).length, 1, 'a token row');
    await ts2.server.core.accounts.delete(ts2.server.core.accounts.userJid(`carol@${DOMAIN}`));
    t.equal((await rows()).length, 0, 'tokens go with the account');
  });

  t.test('Bind 2 ends the earlier session of the same client', async (t) => {
    const ua = randomUUID();
    const first = await secured(ts);
    const one = await scram2(first.s, { mechanism: 'SCRAM-SHA-256', username: 'bob', password: PASSWORD, extra: `${userAgent(ua)}<bind xmlns='${BIND2}'><tag>phone</tag></bind>` });
    t.equal(one.result.name, 'success');
    const second = await secured(ts);
    const two = await scram2(second.s, {
      mechanism: 'SCRAM-SHA-256',
      username: 'bob',
      password: PASSWORD,
      extra: `${userAgent(ua)}<bind xmlns='${BIND2}'><tag>phone</tag></bind>`,
    });
    t.equal(two.result.name, 'success');
    t.equal(await first.s.streamError(), 'conflict', 'the first session is replaced');
    first.s.close();
    second.s.close();
  });
});
