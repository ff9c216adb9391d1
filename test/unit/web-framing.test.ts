// The web transports' framing: elements made standalone for a WebSocket message or a BOSH body,
// BOSH request bodies through the restricted-XML parser, the response bodies.
import t from 'tap';
import { parseBody, responseBody } from '../../src/web/bosh-body.js';
import { standalone } from '../../src/web/framing.js';
import { XmlStreamError } from '../../src/xml/parser.js';

const LIMITS = { maxStanzaBytes: 10_000, maxDepth: 16, maxAttributes: 16 };

t.test('standalone: the namespaces a stream header gave', async (t) => {
  t.equal(standalone("<message to='a@b'><body>x</body></message>"), "<message xmlns='jabber:client' to='a@b'><body>x</body></message>");
  t.equal(standalone('<presence/>'), "<presence xmlns='jabber:client'/>");
  t.equal(standalone("<iq xmlns='jabber:client' id='1'/>"), "<iq xmlns='jabber:client' id='1'/>", 'declared already');
  t.equal(standalone("<r xmlns='urn:xmpp:sm:3'/>"), "<r xmlns='urn:xmpp:sm:3'/>", 'a nonza keeps its own');
  t.equal(standalone('<stream:features><bind/></stream:features>'), "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind/></stream:features>");
  t.equal(
    standalone("<message><body xmlns='x'>a</body></message>"),
    "<message xmlns='jabber:client'><body xmlns='x'>a</body></message>",
    'a child namespace is no declaration of the top',
  );
});

t.test('BOSH bodies', async (t) => {
  const { attrs, children } = parseBody(
    "<body xmlns='http://jabber.org/protocol/httpbind' rid='7' sid='ab' xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true'><message xmlns='jabber:client' to='a@b'/><r xmlns='urn:xmpp:sm:3'/></body>",
    LIMITS,
  );
  t.equal(attrs.rid, '7');
  t.equal(attrs['xmpp:restart'], 'true');
  t.same(
    children.map((c) => [c.name, c.attrs.xmlns]),
    [
      ['message', undefined],
      ['r', 'urn:xmpp:sm:3'],
    ],
    "stanzas in 'jabber:client' as on a stream",
  );
  const refused = (text: string) => {
    try {
      parseBody(text, LIMITS);
      return 'accepted';
    } catch (err) {
      return (err as XmlStreamError).condition;
    }
  };
  t.equal(refused("<!DOCTYPE body><body xmlns='http://jabber.org/protocol/httpbind'/>"), 'restricted-xml');
  t.equal(refused("<body xmlns='http://jabber.org/protocol/httpbind'><!-- c --></body>"), 'restricted-xml');
  t.equal(refused("<body xmlns='http://jabber.org/protocol/httpbind'><message>"), 'not-well-formed', 'incomplete');
  t.equal(refused("<other xmlns='http://jabber.org/protocol/httpbind'/>"), 'not-well-formed', 'not a body');
  t.equal(refused(`<body xmlns='http://jabber.org/protocol/httpbind'><message>${'x'.repeat(20_000)}</message></body>`), 'policy-violation', 'a stanza past the limit');
});

t.test('BOSH responses', async (t) => {
  t.equal(
    responseBody({ type: 'terminate', condition: undefined }),
    "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' type='terminate'/>",
  );
  t.equal(responseBody({ ack: 3 }, '<a/>'), "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' ack='3'><a/></body>");
});
