// Federation safety, with a raw server-to-server peer written here (socket, STARTTLS, SASL
// EXTERNAL, dialback by hand) and, for dialback, a raw authoritative server it controls:
// - a peer authenticated as one domain that sends from another is cut off (<not-authorized/>),
//   whether it authenticated with SASL EXTERNAL or with dialback;
// - a 'to' we do not serve ends the stream with <host-unknown/>;
// - dialback answers nobody asked for are ignored; a forged key is refused (type='invalid');
// - we answer <db:verify/> for keys we made (authoritative role), and only those;
// - addresses from other servers are prepared again; stanzas up to 512 KiB pass, larger end
//   the stream; nothing before TLS (required) and no stanza before authentication.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { X509Certificate } from 'node:crypto';
import { DialbackKeys } from '../../src/s2s/dialback.js';
import { certificateNames } from '../../src/s2s/identity.js';
import { nothingArrived, XmlSocket } from '../helpers/clients.js';
import { connectTo, link, makeTestCa, startFederated, xml, type FedClient, type FederatedServer } from './s2s-helpers.js';

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

/** A raw XML stream to or from a server, as another server would speak it. */
class RawPeer extends XmlSocket {
  constructor(socket: net.Socket) {
    super(socket, { timeoutMs: 8000, what: 'the raw peer', failOnClose: true });
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawPeer(socket);
  }

  /** The id of the last stream header received. */
  get streamId(): string {
    return this.headers.at(-1)!.attrs.id!;
  }

  override write(data: string | Buffer | Element): boolean {
    return super.write(typeof data === 'string' || Buffer.isBuffer(data) ? data : data.toString());
  }

  header(attrs: Record<string, string>): void {
    const extra = Object.entries(attrs)
      .map(([k, v]) => ` ${k}='${v}'`)
      .join('');
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'${extra}>`,
    );
  }

  /** Client-side STARTTLS, optionally presenting a certificate. */
  async startTls(servername: string, cert?: { cert: string; key: string }): Promise<void> {
    this.write(`<starttls xmlns='${NS_TLS}'/>`);
    await this.element('proceed');
    const secure = tls.connect({
      socket: this.socket,
      servername,
      rejectUnauthorized: false,
      ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
    });
    await new Promise((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket.removeAllListeners('data');
    this.useSocket(secure);
  }

  /** Server-side STARTTLS (as an authoritative server answering a connection). */
  async acceptTls(cert: { cert: string; key: string }): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    const secure = new tls.TLSSocket(raw, { isServer: true, cert: readFileSync(cert.cert), key: readFileSync(cert.key) });
    this.useSocket(secure);
    await new Promise((resolve) => secure.once('secure', resolve));
  }
}

/** Connects to `ts` as `from`, STARTTLS (with `cert` if given), and waits for the features. */
async function negotiate(ts: FederatedServer, from: string, cert?: { cert: string; key: string }): Promise<{ peer: RawPeer; features: Element }> {
  const peer = await RawPeer.connect(ts.s2sPort);
  peer.header({ from, to: ts.domain });
  const first = await peer.element('stream:features');
  if (!first.getChild('starttls', NS_TLS)) throw new Error('no STARTTLS offered');
  await peer.startTls(ts.domain, cert);
  peer.header({ from, to: ts.domain });
  const features = await peer.element('stream:features');
  return { peer, features };
}

/** SASL EXTERNAL as `from` (certificate from the test CA); returns the authenticated stream. */
async function external(ts: FederatedServer, from: string, cert: { cert: string; key: string }): Promise<RawPeer> {
  const { peer, features } = await negotiate(ts, from, cert);
  const mechanisms = features
    .getChild('mechanisms', NS_SASL)
    ?.getChildren('mechanism')
    .map((m) => m.getText());
  if (!mechanisms?.includes('EXTERNAL')) throw new Error(`EXTERNAL not offered: ${features.toString()}`);
  peer.write(`<auth xmlns='${NS_SASL}' mechanism='EXTERNAL'>${Buffer.from(from).toString('base64')}</auth>`);
  await peer.element('success');
  peer.restart();
  peer.header({ from, to: ts.domain });
  await peer.element('stream:features');
  return peer;
}

/**
 * A raw authoritative server for `domain`: answers a Starling's connection (STARTTLS, dialback
 * features), accepts its own dialback key (so what it sends us can come back), and answers its
 * <db:verify/> requests as `onVerify` says. `received` collects the stanzas that came back.
 */
async function authoritative(
  t: Test,
  domain: string,
  cert: { cert: string; key: string },
  onVerify: (request: Element, peer: RawPeer) => void,
): Promise<{ port: number; requests: Element[]; received: Element[] }> {
  const requests: Element[] = [];
  const received: Element[] = [];
  const peers: RawPeer[] = [];
  const server = net.createServer((socket) => {
    const peer = new RawPeer(socket);
    peers.push(peer);
    void (async () => {
      const h = await peer.until(() => peer.headers[0]);
      peer.header({ from: domain, to: h.attrs.from!, id: 'auth-1' });
      peer.write(`<stream:features><starttls xmlns='${NS_TLS}'><required/></starttls></stream:features>`);
      await peer.element('starttls');
      peer.write(`<proceed xmlns='${NS_TLS}'/>`);
      await peer.acceptTls(cert);
      await peer.until(() => peer.headers[0]);
      peer.header({ from: domain, to: h.attrs.from!, id: 'auth-2' });
      peer.write(`<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`);
      for (;;) {
        const el = await peer.until(() => peer.elements.shift(), 60_000);
        if (el.name === 'db:verify') {
          requests.push(el);
          onVerify(el, peer);
        } else if (el.name === 'db:result') {
          peer.write(`<db:result from='${el.attrs.to}' to='${el.attrs.from}' type='valid'/>`);
        } else received.push(el);
      }
    })().catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const p of peers) p.close();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, requests, received };
}

/** Polls until `check` finds something (8 s at most). */
async function waitFor<T>(check: () => T | undefined, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** a.localhost trusting a throwaway CA, with alice online, and a certificate for evil.localhost from that CA. */
async function trustingA(t: Test): Promise<{ a: FederatedServer; alice: FedClient; evil: { cert: string; key: string } }> {
  const ca = makeTestCa(t);
  const a = await startFederated(t, 'a.localhost', { ca_files: [ca.caFile] });
  await a.user('alice');
  const alice = await connectTo(a, 'alice', 'desk');
  t.teardown(() => alice.stop());
  return { a, alice, evil: ca.issue('evil.localhost') };
}

/** a.localhost and b.localhost linked; a raw peer to a.localhost claiming to be b.localhost, before authenticating. */
async function peerOfLinked(t: Test): Promise<RawPeer> {
  const a = await startFederated(t, 'a.localhost');
  const b = await startFederated(t, 'b.localhost');
  link(a, b);
  const { peer } = await negotiate(a, 'b.localhost');
  t.teardown(() => peer.close());
  return peer;
}

const message = (from: string, to: string, body: string) => `<message from='${from}' to='${to}' type='chat'><body>${body}</body></message>`;

t.test('SASL EXTERNAL: authenticated as one domain, sending from another, is cut off', async (t) => {
  const { a, alice, evil } = await trustingA(t);

  const peer = await external(a, 'evil.localhost', evil);
  t.teardown(() => peer.close());
  t.match(a.server.s2s.connections(), [{ direction: 'in', remote: 'evil.localhost', auth: ['evil.localhost:sasl-external'] }], 'evil.localhost authenticated by its certificate');

  peer.write(message('Mallory@EVIL.localhost/Laptop', 'ALICE@A.localhost', 'legit'));
  const legit = await alice.next((el) => el.name === 'message' && el.getChildText('body') === 'legit');
  t.equal(legit.attrs.from, 'mallory@evil.localhost/Laptop', "the sender's address is prepared again (RFC 7622)");
  t.equal(legit.attrs.to, 'alice@a.localhost', 'and so is the recipient’s');

  peer.write(message('eve@b.localhost', 'alice@a.localhost', 'spoofed'));
  t.equal(await peer.streamError(), 'not-authorized', 'a stanza from a domain not authenticated on the stream: not-authorized');
  await peer.until(() => peer.closed);
  t.ok(peer.closed, 'and the stream is closed');
  // The server refused the stanza before it answered with the stream error; alice's round trip
  // brings anything it wrote to her before.
  t.ok(await nothingArrived(alice, (el) => el.getChildText('body') === 'spoofed'), 'the spoofed message was not delivered');
});

t.test('SASL EXTERNAL is offered only for a certificate valid for the claimed domain', async (t) => {
  const ca = makeTestCa(t);
  const a = await startFederated(t, 'a.localhost', { ca_files: [ca.caFile] });
  const evil = ca.issue('evil.localhost');

  const { peer, features } = await negotiate(a, 'b.localhost', evil);
  t.teardown(() => peer.close());
  t.notOk(features.getChild('mechanisms', NS_SASL), 'a certificate for evil.localhost does not get EXTERNAL offered as b.localhost');
  t.ok(features.getChild('dialback', 'urn:xmpp:features:dialback'), 'dialback is still offered');
  peer.write(`<auth xmlns='${NS_SASL}' mechanism='EXTERNAL'>=</auth>`);
  const failure = await peer.element('failure');
  t.ok(failure.getChild('not-authorized'), 'EXTERNAL tried anyway: not-authorized');

  const second = await negotiate(a, 'evil.localhost', evil);
  t.teardown(() => second.peer.close());
  second.peer.write(`<auth xmlns='${NS_SASL}' mechanism='EXTERNAL'>${Buffer.from('b.localhost').toString('base64')}</auth>`);
  const wrongAuthzid = await second.peer.element('failure');
  t.ok(wrongAuthzid.getChild('invalid-authzid'), 'an authorization identity other than the header domain: invalid-authzid');
});

t.test('dialback: authenticated as one domain, sending from another, is cut off', async (t) => {
  const ca = makeTestCa(t); // only to have a certificate; a.localhost does not trust this CA
  const evilCert = ca.issue('evil.localhost');
  const a = await startFederated(t, 'a.localhost', { connect_timeout: 4 }, { hosts: { 'a.localhost': {}, 'a2.localhost': {} } });
  await a.user('alice');
  const alice = await connectTo(a, 'alice', 'desk');
  t.teardown(() => alice.stop());

  const auth = await authoritative(t, 'evil.localhost', evilCert, (request, peer) => {
    // The keys are ours (we are evil.localhost, and its neighbour other.localhost): valid.
    peer.write(`<db:verify from='${request.attrs.to}' to='${request.attrs.from}' id='${request.attrs.id}' type='valid'/>`);
  });
  a.server.s2s.addRoute('evil.localhost', `127.0.0.1:${auth.port}`);
  a.server.s2s.addRoute('other.localhost', `127.0.0.1:${auth.port}`);

  const { peer, features } = await negotiate(a, 'evil.localhost', evilCert);
  t.teardown(() => peer.close());
  t.notOk(features.getChild('mechanisms', NS_SASL), 'no EXTERNAL: the certificate is not trusted by a.localhost');
  peer.write(`<db:result from='evil.localhost' to='a.localhost'>0123456789abcdef</db:result>`);
  const result = await peer.element('db:result');
  t.same(result.attrs, { from: 'a.localhost', to: 'evil.localhost', type: 'valid' }, 'valid, after asking the authoritative server');
  t.equal(auth.requests.length, 1, 'a.localhost asked evil.localhost’s server once');
  t.same(
    { ...auth.requests[0]!.attrs, key: auth.requests[0]!.getText() },
    { from: 'a.localhost', to: 'evil.localhost', id: peer.streamId, key: '0123456789abcdef' },
    'the verify request names the stream the key came on',
  );

  peer.write(message('mallory@evil.localhost', 'alice@a.localhost', 'via dialback'));
  t.ok(await alice.next((el) => el.getChildText('body') === 'via dialback'), 'stanzas from the verified domain pass');

  t.test('several domain pairs over one stream (XEP-0220 multiplexing)', async (t) => {
    peer.write(`<db:result from='other.localhost' to='a.localhost'>feedface</db:result>`);
    t.same((await peer.element('db:result')).attrs, { from: 'a.localhost', to: 'other.localhost', type: 'valid' }, 'a second sending domain');
    peer.write(message('olga@other.localhost', 'alice@a.localhost', 'from the second domain'));
    t.ok(await alice.next((el) => el.getChildText('body') === 'from the second domain' && el.attrs.from === 'olga@other.localhost'), 'its stanzas pass too');
    peer.write(`<db:result from='evil.localhost' to='a2.localhost'>cafe</db:result>`);
    t.same((await peer.element('db:result')).attrs, { from: 'a2.localhost', to: 'evil.localhost', type: 'valid' }, 'a second target domain');
    peer.write(`<message from='mallory@evil.localhost' to='nobody@a2.localhost' id='m-a2'><body>?</body></message>`);
    const bounced = await waitFor(() => auth.received.find((el) => el.attrs.id === 'm-a2'));
    t.equal(bounced.attrs.type, 'error', 'a stanza to the second target was routed (its error went back over a.localhost’s own stream)');
    t.equal(bounced.attrs.from, 'nobody@a2.localhost');
  });

  t.test('a domain not authenticated on the stream is cut off', async (t) => {
    peer.write(message('bob@b.localhost', 'alice@a.localhost', 'spoofed'));
    t.equal(await peer.streamError(), 'not-authorized', 'another domain: not-authorized, stream closed');
    t.ok(await nothingArrived(alice, (el) => el.getChildText('body') === 'spoofed'), 'not delivered');
  });
});

t.test('dialback answers nobody asked for are ignored', async (t) => {
  const ca = makeTestCa(t);
  const evilCert = ca.issue('evil.localhost');
  const a = await startFederated(t, 'a.localhost', { connect_timeout: 1.5 });
  let inboundId = '';
  const auth = await authoritative(t, 'evil.localhost', evilCert, (request, authPeer) => {
    // Never answers the real request; instead an answer for an id that was never asked about,
    // and one for the right id but the wrong domains.
    authPeer.write(`<db:verify from='evil.localhost' to='a.localhost' id='never-asked' type='valid'/>`);
    authPeer.write(`<db:verify from='other.localhost' to='a.localhost' id='${inboundId}' type='valid'/>`);
    void request;
  });
  a.server.s2s.addRoute('evil.localhost', `127.0.0.1:${auth.port}`);

  const { peer } = await negotiate(a, 'evil.localhost', evilCert);
  t.teardown(() => peer.close());
  inboundId = peer.streamId;
  // Answers sent on the incoming stream itself (where no request was made) count for nothing.
  peer.write(`<db:verify from='evil.localhost' to='a.localhost' id='${inboundId}' type='valid'/>`);
  peer.write(`<db:result from='evil.localhost' to='a.localhost' type='valid'/>`);
  peer.write(`<db:result from='evil.localhost' to='a.localhost'>forged-key</db:result>`);
  const result = await peer.element('db:result', 8000);
  t.equal(result.attrs.type, 'error', 'no verification: a dialback error once the check times out');
  t.ok(result.getChild('error')?.getChild('remote-server-timeout'), 'remote-server-timeout');
  t.equal(auth.requests.length, 1, 'the one real request was made');
  peer.write(message('mallory@evil.localhost', 'x@a.localhost', 'not yet'));
  t.equal(await peer.streamError(), 'not-authorized', 'the domain was never authenticated');
});

t.test('a forged dialback key is refused (type invalid) and the stream closed', async (t) => {
  const peer = await peerOfLinked(t);
  peer.write(`<db:result from='b.localhost' to='a.localhost'>${'ab'.repeat(32)}</db:result>`);
  const result = await peer.element('db:result');
  t.same(result.attrs, { from: 'a.localhost', to: 'b.localhost', type: 'invalid' }, "b.localhost's server says it is not its key");
  t.equal(await peer.streamError(), 'not-authorized');
});

t.test('dialback requests for a domain we do not serve get an error; the stream goes on', async (t) => {
  const peer = await peerOfLinked(t);
  peer.write(`<db:result from='b.localhost' to='elsewhere.example'>abc</db:result>`);
  const result = await peer.element('db:result');
  t.equal(result.attrs.type, 'error');
  t.equal(result.attrs.from, 'elsewhere.example');
  t.ok(result.getChild('error')?.getChild('item-not-found'), 'item-not-found (XEP-0220 §2.4)');
  t.notOk(peer.closed, 'the stream stays open');
});

t.test('the authoritative role: <db:verify/> is answered for our keys only', async (t) => {
  const a = await startFederated(t, 'a.localhost');
  const secret = readFileSync(path.join(a.dataDir, 's2s', 'dialback-secret'), 'utf8').trim();
  const key = new DialbackKeys(secret).generate('b.localhost', 'a.localhost', 'stream-42');
  const { peer } = await negotiate(a, 'b.localhost');
  t.teardown(() => peer.close());
  peer.write(`<db:verify from='b.localhost' to='a.localhost' id='stream-42'>${key}</db:verify>`);
  t.equal((await peer.element('db:verify')).attrs.type, 'valid', 'a key a.localhost made: valid');
  peer.write(`<db:verify from='b.localhost' to='a.localhost' id='stream-43'>${key}</db:verify>`);
  t.equal((await peer.element('db:verify')).attrs.type, 'invalid', 'the same key for another stream: invalid');
  peer.write(`<db:verify from='c.localhost' to='a.localhost' id='stream-42'>${key}</db:verify>`);
  t.equal((await peer.element('db:verify')).attrs.type, 'invalid', 'for another receiving domain: invalid');
  peer.write(`<db:verify from='b.localhost' to='nope.localhost' id='stream-42'>${key}</db:verify>`);
  const unknown = await peer.element('db:verify');
  t.equal(unknown.attrs.type, 'error', 'about a domain we do not serve: error');
  t.ok(unknown.getChild('error')?.getChild('item-not-found'));
  t.same(
    new DialbackKeys('s3cr3tf0rd14lb4ck').generate('montague.example', 'capulet.example', 'D60000229F'),
    'b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3',
    'the key of XEP-0220 example 1 (XEP-0185 generation)',
  );
});

t.test('host-unknown, size limits, and what may not come before TLS or authentication', async (t) => {
  const { a, alice, evil } = await trustingA(t);

  t.test('a stream header for a domain we do not serve: host-unknown', async (t) => {
    const peer = await RawPeer.connect(a.s2sPort);
    t.teardown(() => peer.close());
    peer.header({ from: 'evil.localhost', to: 'elsewhere.example' });
    t.equal(await peer.streamError(), 'host-unknown');
  });

  t.test('anything but STARTTLS before TLS: policy-violation', async (t) => {
    const peer = await RawPeer.connect(a.s2sPort);
    t.teardown(() => peer.close());
    peer.header({ from: 'evil.localhost', to: 'a.localhost' });
    await peer.element('stream:features');
    peer.write(`<db:result from='evil.localhost' to='a.localhost'>abc</db:result>`);
    t.equal(await peer.streamError(), 'policy-violation');
  });

  t.test('a stanza before authentication: not-authorized', async (t) => {
    const { peer } = await negotiate(a, 'evil.localhost', evil);
    t.teardown(() => peer.close());
    peer.write(message('mallory@evil.localhost', 'alice@a.localhost', 'too early'));
    t.equal(await peer.streamError(), 'not-authorized');
  });

  t.test('a stanza to a domain we do not serve: host-unknown', async (t) => {
    const peer = await external(a, 'evil.localhost', evil);
    t.teardown(() => peer.close());
    peer.write(message('mallory@evil.localhost', 'someone@elsewhere.example', 'where?'));
    t.equal(await peer.streamError(), 'host-unknown');
  });

  t.test('stanzas up to 512 KiB pass (more than c2s allows); larger ones end the stream', async (t) => {
    const peer = await external(a, 'evil.localhost', evil);
    t.teardown(() => peer.close());
    const big = 'x'.repeat(400 * 1024);
    peer.write(message('mallory@evil.localhost', 'alice@a.localhost', big));
    const got = await alice.next((el) => el.name === 'message' && (el.getChildText('body')?.length ?? 0) > 1000, 15_000);
    t.equal(got.getChildText('body')!.length, big.length, 'a 400 KiB message is delivered');
    peer.write(message('mallory@evil.localhost', 'alice@a.localhost', 'y'.repeat(600 * 1024)));
    t.equal(await peer.streamError(15_000), 'policy-violation', 'a 600 KiB stanza: policy-violation');
  });
});

t.test('require_encryption = false: negotiation without TLS; an unauthenticated stream times out', async (t) => {
  const a = await startFederated(t, 'a.localhost', { require_encryption: false, connect_timeout: 1 });
  const secret = readFileSync(path.join(a.dataDir, 's2s', 'dialback-secret'), 'utf8').trim();
  const peer = await RawPeer.connect(a.s2sPort);
  t.teardown(() => peer.close());
  peer.header({ from: 'b.localhost', to: 'a.localhost' });
  const features = await peer.element('stream:features');
  t.ok(features.getChild('starttls', NS_TLS), 'STARTTLS offered');
  t.notOk(features.getChild('starttls', NS_TLS)!.getChild('required'), 'not required');
  t.ok(features.getChild('dialback', 'urn:xmpp:features:dialback'), 'dialback offered before TLS');
  const key = new DialbackKeys(secret).generate('b.localhost', 'a.localhost', 'plain-1');
  peer.write(`<db:verify from='b.localhost' to='a.localhost' id='plain-1'>${key}</db:verify>`);
  t.equal((await peer.element('db:verify')).attrs.type, 'valid', 'a verification answered on a plain stream');
  const started = Date.now();
  t.equal(await peer.streamError(5000), 'connection-timeout', 'no domain authenticated within connect_timeout: connection-timeout');
  t.ok(Date.now() - started < 3000);
});

t.test('certificate identities: DNS-ID, wildcards, SRV-ID, XmppAddr, CN only without them', async (t) => {
  const ca = makeTestCa(t);
  const load = (c: { cert: string }) => new X509Certificate(readFileSync(c.cert));
  const dns = load(ca.issue('example.org', { dnsNames: ['*.chat.example.org'], cn: 'unrelated.example', name: 'dns' }));
  t.ok(certificateNames(dns, 'example.org'), 'DNS-ID');
  t.ok(certificateNames(dns, 'muc.chat.example.org'), 'a wildcard covers one left-most label');
  t.notOk(certificateNames(dns, 'chat.example.org'), 'not the parent domain itself');
  t.notOk(certificateNames(dns, 'a.muc.chat.example.org'), 'nor two labels');
  t.notOk(certificateNames(dns, 'unrelated.example'), 'the CN does not count when there is a DNS-ID');
  t.notOk(certificateNames(dns, 'example.net'), 'another domain');

  const srv = load(ca.issue('srv.example', { dnsId: false, srvId: true, cn: 'other.example', name: 'srv' }));
  t.ok(certificateNames(srv, 'srv.example'), 'SRV-ID _xmpp-server.srv.example');
  t.notOk(certificateNames(srv, 'other.example'), 'CN ignored: the certificate has an SRV-ID');

  const xmpp = load(ca.issue('xmpp.example', { dnsId: false, xmppAddr: true, cn: 'node1.example', name: 'xmpp' }));
  t.ok(certificateNames(xmpp, 'xmpp.example'), 'XmppAddr (id-on-xmppAddr)');
  t.ok(certificateNames(xmpp, 'node1.example'), 'no DNS-ID or SRV-ID: the CN counts');

  const bare = load(ca.issue('cn.example', { dnsId: false, name: 'cn-only' }));
  t.ok(certificateNames(bare, 'cn.example'), 'a certificate with no subjectAltName: its CN');
});
