import t from 'tap';
import type { Element } from '@xmpp/xml';
import { MAX_STREAM_HEADER_BYTES, XmlStreamError, XmlStreamParser, type XmlErrorCondition, type XmlLimits } from '../../src/xml/parser.js';

const LIMITS: XmlLimits = { maxStanzaBytes: 256 * 1024, maxDepth: 32, maxAttributes: 64 };

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

interface Run {
  events: string[];
  header: Element | null;
  stanzas: Element[];
  errors: XmlStreamError[];
  parser: XmlStreamParser;
}

function newRun(limits: XmlLimits = LIMITS): Run {
  const run: Run = { events: [], header: null, stanzas: [], errors: [], parser: undefined as unknown as XmlStreamParser };
  run.parser = new XmlStreamParser(limits, {
    streamStart(header) {
      run.header = header;
      run.events.push(`start ${header.toString()}`);
    },
    stanza(el) {
      run.stanzas.push(el);
      run.events.push(`stanza ${el.toString()}`);
    },
    streamEnd() {
      run.events.push('end');
    },
    error(err) {
      run.errors.push(err);
      run.events.push(`error ${err.condition}`);
    },
  });
  return run;
}

/** Feeds `input` in chunks cut at the given byte positions (all of it at once by default). */
function parse(input: string | Buffer, opts: { limits?: XmlLimits; chunk?: number } = {}): Run {
  const run = newRun(opts.limits);
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const size = opts.chunk ?? bytes.length;
  for (let i = 0; i < bytes.length; i += size) run.parser.write(bytes.subarray(i, i + size));
  return run;
}

function errorOf(run: Run): XmlErrorCondition | undefined {
  return run.errors[0]?.condition;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SAMPLE =
  HEADER +
  '\n' +
  "<message xmlns='jabber:client' to='juliet@example.com/balcony' from='romeo@example.net/orchard' id='m1' type='chat'>" +
  '<body>Art thou not Romeo, and a Montague? caf\u00e9 \ud83d\ude00 &lt;3 &amp; &quot;x&quot; &#233;&#x1F600;</body>' +
  "<active xmlns='http://jabber.org/protocol/chatstates'/></message>" +
  ' \n\t ' +
  '<iq type="get" id="p1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>' +
  '<presence><status a=\'x &gt; y "q"\' b="it\'s">line1\r\nline2\rline3]]&gt;<![CDATA[<raw> & ]] ]]]>tail</status></presence>' +
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>" +
  "<message to='x@y'><body>\u00e9\u00e9\u00e9 \ud83d\ude00\ud83d\ude00</body></message>" +
  '</stream:stream>\n';

t.test('header and several stanzas in one chunk', async (t) => {
  const run = parse(SAMPLE);
  t.same(run.errors, []);
  t.equal(run.events.at(-1), 'end');
  t.equal(run.stanzas.length, 5);
  const header = run.header!;
  t.equal(header.name, 'stream:stream');
  t.same(
    { ...header.attrs },
    {
      xmlns: 'jabber:client',
      'xmlns:stream': 'http://etherx.jabber.org/streams',
      to: 'example.com',
      version: '1.0',
      'xml:lang': 'en',
    },
    'header attributes as written, xmlns kept',
  );
  t.equal(header.children.length, 0);

  const [message, iq, presence, features, message2] = run.stanzas as [Element, Element, Element, Element, Element];
  t.equal(message.name, 'message');
  t.same({ ...message.attrs }, { to: 'juliet@example.com/balcony', from: 'romeo@example.net/orchard', id: 'm1', type: 'chat' });
  t.equal(message.getChildText('body'), 'Art thou not Romeo, and a Montague? caf\u00e9 \ud83d\ude00 <3 & "x" \u00e9\ud83d\ude00');
  t.equal(message.getChild('active')?.getNS(), 'http://jabber.org/protocol/chatstates');
  t.equal(iq.getChild('ping')?.attrs.xmlns, 'urn:xmpp:ping');
  const status = presence.getChild('status')!;
  t.equal(status.attrs.a, 'x > y "q"');
  t.equal(status.attrs.b, "it's");
  t.same(status.children, ['line1\nline2\nline3]]><raw> & ]] ]tail'], 'CRLF normalised, CDATA merged into one text child');
  t.equal(features.name, 'stream:features');
  t.equal(features.getChild('starttls')?.getChild('required')?.name, 'required');
  t.equal(message2.getChildText('body'), '\u00e9\u00e9\u00e9 \ud83d\ude00\ud83d\ude00');
  t.equal(run.parser.bytesBuffered, 0);
});

t.test('one byte at a time gives the same result', async (t) => {
  const whole = parse(SAMPLE);
  const bytewise = parse(SAMPLE, { chunk: 1 });
  t.same(bytewise.events, whole.events);
  t.same(bytewise.errors, []);
  t.ok(Buffer.from(SAMPLE).length > SAMPLE.length, 'the sample has multi-byte characters to split');
});

t.test('random chunkings give the same result', async (t) => {
  const whole = parse(SAMPLE).events;
  const bytes = Buffer.from(SAMPLE);
  const random = rng(42);
  for (let round = 0; round < 200; round++) {
    const run = newRun();
    let i = 0;
    while (i < bytes.length) {
      const n = 1 + Math.floor(random() * (round % 2 ? 8 : 64));
      run.parser.write(bytes.subarray(i, i + n));
      i += n;
    }
    if (JSON.stringify(run.events) !== JSON.stringify(whole)) {
      t.same(run.events, whole, `round ${round}`);
      return;
    }
  }
  t.pass('200 random chunkings agree');
});

t.test('string input works like the same bytes', async (t) => {
  const run = newRun();
  for (const piece of [HEADER.slice(0, 10), HEADER.slice(10), '<message><body>\ud83d\ude00</body></message>']) {
    run.parser.write(piece);
  }
  t.same(run.errors, []);
  t.equal(run.stanzas[0]?.getChildText('body'), '\ud83d\ude00');
});

t.test('split multi-byte characters', async (t) => {
  const text = 'é😀€';
  const input = Buffer.from(`${HEADER}<message><body a='${text}'>${text}</body></message>`);
  for (let cut = HEADER.length; cut < input.length; cut++) {
    const run = newRun();
    run.parser.write(input.subarray(0, cut));
    run.parser.write(input.subarray(cut));
    const body = run.stanzas[0]?.getChild('body');
    if (body?.getText() !== text || body.attrs.a !== text || run.errors.length) {
      t.fail(`cut at ${cut}`);
      return;
    }
  }
  t.pass('every cut point works');
});

t.test('xmlns handling on top-level stanzas', async (t) => {
  const run = parse(
    HEADER +
      "<message xmlns='jabber:client'><body>a</body><x xmlns='jabber:client'/></message>" +
      "<presence xmlns='jabber:server'/>" +
      "<iq xmlns='urn:other' type='get'/>" +
      "<r xmlns='urn:xmpp:sm:3'/>",
  );
  const [message, presence, iq, r] = run.stanzas as [Element, Element, Element, Element];
  t.equal(message.attrs.xmlns, undefined, 'jabber:client stripped');
  t.equal(message.toString(), '<message><body>a</body><x xmlns="jabber:client"/></message>', 'only on the top level');
  t.equal(presence.attrs.xmlns, undefined, 'jabber:server stripped');
  t.equal(iq.attrs.xmlns, 'urn:other');
  t.equal(r.attrs.xmlns, 'urn:xmpp:sm:3');
  t.equal(run.header!.attrs.xmlns, 'jabber:client', 'kept on the header');
  t.equal(message.parent ?? undefined, undefined, 'top-level stanza has no parent');
  const body = message.getChild('body')!;
  t.equal(body.parent, message, 'children have their parent');
});

t.test('prefixed elements', async (t) => {
  const run = parse(
    HEADER +
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>" +
      "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>oops</text></stream:error>" +
      "<db:result xmlns:db='jabber:server:dialback' from='a' to='b'>key</db:result>" +
      '</stream:stream>',
  );
  t.same(run.errors, []);
  const [features, error, result] = run.stanzas as [Element, Element, Element];
  t.equal(features.name, 'stream:features');
  t.equal(features.getChild('mechanisms')?.getChildText('mechanism'), 'SCRAM-SHA-1');
  t.equal(error.name, 'stream:error');
  t.equal(error.getChildText('text'), 'oops');
  t.equal(result.name, 'db:result');
  t.equal(result.getNS(), 'jabber:server:dialback');
  t.equal(result.getText(), 'key');
  t.equal(run.events.at(-1), 'end');
});

t.test('namespace well-formedness (Namespaces in XML 1.0)', async (t) => {
  // [name, input after the header, error, stanzas delivered before it]
  const cases: [string, string, XmlErrorCondition, number?][] = [
    ['unbound element prefix', '<p:foo/>', 'bad-namespace-prefix'],
    ['unbound prefix on a child', "<message><p:x xmlns:q='urn:q'/></message>", 'bad-namespace-prefix'],
    ['unbound attribute prefix', "<message a:x='1'/>", 'bad-namespace-prefix'],
    ['prefix out of scope after its element closed', "<message><a xmlns:p='urn:p'/><p:b/></message>", 'bad-namespace-prefix'],
    ['prefix of a previous stanza is gone', "<message xmlns:p='urn:p'/><p:foo/>", 'bad-namespace-prefix', 1],
    ['undeclaring a prefix', "<message xmlns:p=''/>", 'not-well-formed'],
    ['undeclaring a prefix bound above', "<message xmlns:p='urn:p'><p:x xmlns:p=''/></message>", 'not-well-formed'],
    ['two attributes with the same expanded name', "<message xmlns:a='urn:n' xmlns:b='urn:n' a:x='1' b:x='2'/>", 'not-well-formed'],
    ['same expanded name, one prefix bound on the stream header', "<message xmlns:s='http://etherx.jabber.org/streams' s:x='1' stream:x='2'/>", 'not-well-formed'],
    ['duplicate prefixed attribute', "<message xmlns:a='urn:n' a:x='1' a:x='2'/>", 'not-well-formed'],
    ['duplicate declaration', "<message xmlns:a='urn:n' xmlns:a='urn:n'/>", 'not-well-formed'],
    ['the xmlns prefix declared', "<message xmlns:xmlns='urn:n'/>", 'not-well-formed'],
    ['the xml prefix rebound', "<message xmlns:xml='urn:n'/>", 'not-well-formed'],
    ['an element with the xmlns prefix', '<xmlns:message/>', 'not-well-formed'],
  ];
  for (const [name, stanza, condition, before = 0] of cases) {
    t.equal(errorOf(parse(HEADER + stanza)), condition, name);
    t.equal(errorOf(parse(HEADER + stanza, { chunk: 1 })), condition, `${name} (byte by byte)`);
    t.equal(parse(HEADER + stanza).stanzas.length, before, `${name}: not delivered`);
  }
  t.equal(errorOf(parse("<stream:stream xmlns='jabber:client' to='example.com' version='1.0'>")), 'bad-namespace-prefix', 'unbound stream prefix on the header');

  const ok = parse(
    HEADER +
      "<message xmlns:p='urn:p'><p:x p:a='1' a='2'><p:y/></p:x><q:z xmlns:q='urn:q' q:a='1' p:a='2'/></message>" +
      "<message xmlns:a='urn:a' xmlns:b='urn:b' a:x='1' b:x='2' xml:lang='en'/>" +
      "<message xmlns:p='urn:p'><x xmlns:p='urn:other'><p:y/></x><p:y/></message>" +
      '<stream:features/>',
  );
  t.same(ok.errors, [], 'bound prefixes, distinct expanded names, redeclaration and xml: pass');
  t.equal(ok.stanzas.length, 4);
  const reset = newRun();
  reset.parser.write("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x'>");
  reset.parser.reset();
  reset.parser.write(HEADER + '<x:y/>');
  t.equal(errorOf(reset), 'bad-namespace-prefix', "a restart forgets the old header's prefixes");
});

t.test('whitespace keepalives are ignored', async (t) => {
  const run = parse(HEADER + ' \n \r\n\t <presence/>  \n ');
  t.same(run.errors, []);
  t.equal(run.stanzas.length, 1);
  t.equal(run.parser.bytesBuffered, 0);
});

t.test('self-closing stream header', async (t) => {
  const run = parse("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
  t.same(
    run.events.map((e) => e.split(' ')[0]),
    ['start', 'end'],
  );
});

t.test('restricted XML', async (t) => {
  const cases: [string, string][] = [
    ['comment at stream level', HEADER + '<!-- hi -->'],
    ['comment in a stanza', HEADER + '<message><!-- hi --></message>'],
    ['comment before the header', '<!-- hi -->' + HEADER],
    ['processing instruction in a stanza', HEADER + '<message><?php echo ?></message>'],
    ['processing instruction at stream level', HEADER + '<?foo bar?>'],
    ['processing instruction before the header', "<?xml version='1.0'?><?xml-stylesheet href='x'?>" + HEADER],
    ['second XML declaration', "<?xml version='1.0'?>" + HEADER],
    ['XML declaration after the header', HEADER + "<?xml version='1.0'?>"],
    ['DOCTYPE', "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>" + HEADER],
    ['ENTITY declaration', HEADER + "<message><!ENTITY x 'y'></message>"],
    ['other <! markup', HEADER + '<message><!ELEMENT x ANY></message>'],
    ['undeclared named entity in text', HEADER + '<message><body>&nbsp;</body></message>'],
    ['undeclared named entity in an attribute', HEADER + "<message id='&foo;'/>"],
  ];
  for (const [name, input] of cases) {
    t.equal(errorOf(parse(input)), 'restricted-xml', name);
    t.equal(errorOf(parse(input, { chunk: 1 })), 'restricted-xml', `${name} (byte by byte)`);
  }
});

t.test('not well-formed', async (t) => {
  const cases: [string, string | Buffer][] = [
    ['mismatched end tag', HEADER + '<message><body></message>'],
    ['mismatched stream end', HEADER + '</stream:foo>'],
    ['end tag before the header', '</stream:stream>'],
    ['duplicate attribute', HEADER + "<message id='a' id='b'/>"],
    ['duplicate xmlns', HEADER + "<message xmlns='jabber:client' xmlns='jabber:client'/>"],
    ['duplicate prefixed attribute', HEADER + "<x a:b='1' a:b='2'/>"],
    ['attribute without value', HEADER + '<message id/>'],
    ['attribute without quotes', HEADER + '<message id=abc/>'],
    ['no space between attributes', HEADER + "<message a='1'b='2'/>"],
    ['< in an attribute value', HEADER + "<message id='a<b'/>"],
    ['< in an unterminated attribute value', HEADER + "<message id='a<b/><presence/>"],
    ['duplicate attribute after xmlns', HEADER + "<a x='1' y='2'/><b xmlns='urn:x' x='1' z='2' x='3'/>"],
    ['duplicate attribute after the 16th', HEADER + '<a ' + Array.from({ length: 20 }, (_, k) => `a${k}='${k}'`).join(' ') + " a18='x'/>"],
    ['duplicate stripped xmlns after the 16th', HEADER + "<a xmlns='jabber:client' " + Array.from({ length: 20 }, (_, k) => `a${k}='${k}'`).join(' ') + " xmlns='jabber:client'/>"],
    ['control character in text', HEADER + '<message><body>a\u0001b</body></message>'],
    ['NUL in text', HEADER + '<message><body>a\u0000b</body></message>'],
    ['control character in an attribute', HEADER + "<message id='a\u001bb'/>"],
    ['U+FFFE in text', HEADER + '<message><body>\ufffe</body></message>'],
    ['U+FFFF in an attribute', HEADER + "<message id='\uffff'/>"],
    ['control character in CDATA', HEADER + '<message><![CDATA[\u0002]]></message>'],
    ['bad element name', HEADER + '<1message/>'],
    ['bad element name character', HEADER + '<mess$age/>'],
    ['empty element name', HEADER + '< message/>'],
    ['bad attribute name', HEADER + "<message -id='1'/>"],
    ['bad QName', HEADER + '<a:b:c/>'],
    ['QName ending in a colon', HEADER + '<stream:/>'],
    ['text at stream level', HEADER + 'hello<message/>'],
    ['reference at stream level', HEADER + '&amp;'],
    ['CDATA at stream level', HEADER + '<![CDATA[x]]>'],
    ['text before the header', 'hello' + HEADER],
    ['element after the end of the stream', HEADER + '</stream:stream><message/>'],
    ['text after the end of the stream', HEADER + '</stream:stream>x'],
    ['bare ampersand', HEADER + '<message><body>fish & chips</body></message>'],
    ['bare ampersand at the end of text', HEADER + '<message><body>fish &</body></message>'],
    ['unterminated reference', HEADER + '<message><body>&amp</body></message>'],
    ['empty reference', HEADER + '<message><body>&;</body></message>'],
    ['overlong reference', HEADER + '<message><body>&' + 'a'.repeat(40) + ';</body></message>'],
    ['overlong reference never ending', HEADER + '<message><body>&' + 'a'.repeat(40)],
    ['bare ampersand in an attribute', HEADER + "<message id='a&b'/>"],
    ['malformed hex character reference', HEADER + '<message><body>&#xZZ;</body></message>'],
    ['malformed decimal character reference', HEADER + '<message><body>&#12a;</body></message>'],
    ['empty character reference', HEADER + '<message><body>&#;</body></message>'],
    ['reference to NUL', HEADER + '<message><body>&#0;</body></message>'],
    ['reference to a control character', HEADER + '<message><body>&#x1B;</body></message>'],
    ['reference to U+FFFE', HEADER + "<message id='&#xFFFE;'/>"],
    ['reference to a surrogate', HEADER + '<message><body>&#xD800;</body></message>'],
    ['reference beyond Unicode', HEADER + '<message><body>&#x110000;</body></message>'],
    [']]> in text', HEADER + '<message><body>a]]>b</body></message>'],
    ['malformed CDATA opener', HEADER + '<message><![CDAT[x]]></message>'],
    ['invalid UTF-8', Buffer.concat([Buffer.from(HEADER + '<message><body>'), Buffer.from([0xc3, 0x28]), Buffer.from('</body></message>')])],
    ['overlong UTF-8', Buffer.concat([Buffer.from(HEADER + '<message><body>'), Buffer.from([0xc0, 0xaf]), Buffer.from('</body></message>')])],
    ['malformed XML declaration', "<?xml version='2.0'?>" + HEADER.slice(21)],
    ['unsupported encoding', "<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER.slice(21)],
    ['malformed end tag', HEADER + '<message></message x>'],
    ['slash not closing a tag', HEADER + '<message / >'],
  ];
  for (const [name, input] of cases) {
    const run = parse(input);
    t.equal(errorOf(run), 'not-well-formed', name);
    t.equal(run.errors.length, 1, `${name}: one error`);
    t.equal(errorOf(parse(input, { chunk: 1 })), 'not-well-formed', `${name} (byte by byte)`);
  }
});

t.test('well-formed edge cases that must pass', async (t) => {
  const run = parse(
    HEADER +
      '<message   to = \'a\'\n\tid="b" ><body >x</body ></message >' +
      "<x constructor='c' __proto__='p' toString='s' hasOwnProperty='h'/>" +
      "<y a='&#9;&#10;&#13;' b='x\ty\r\nz\nw'>&#x9;&#xD;</y>" +
      '<\u00e9l\u00e8ve \u00e9t\u00e9="1">\u00e9</\u00e9l\u00e8ve>' +
      '<z><![CDATA[]]></z>' +
      '<q>]] ] > &gt;</q>',
  );
  t.same(run.errors, []);
  const [message, x, y, eleve, z, q] = run.stanzas as [Element, Element, Element, Element, Element, Element];
  t.same({ ...message.attrs }, { to: 'a', id: 'b' });
  t.equal(message.getChildText('body'), 'x');
  t.equal(x.attrs.constructor, 'c');
  t.equal(x.attrs.toString, 's');
  t.equal(x.attrs.hasOwnProperty, 'h');
  t.ok(Object.hasOwn(x.attrs, '__proto__'), '__proto__ kept as an own attribute');
  t.equal(Object.getOwnPropertyDescriptor(x.attrs, '__proto__')?.value, 'p');
  t.equal(y.attrs.a, '\t\n\r', 'character references are not normalised');
  t.equal(y.attrs.b, 'x y z w', 'literal whitespace in attributes is normalised');
  t.equal(y.getText(), '\t\r');
  t.equal(eleve.name, '\u00e9l\u00e8ve');
  t.equal(eleve.attrs['\u00e9t\u00e9'], '1');
  t.same(z.children, [], 'empty CDATA adds no text');
  t.equal(q.getText(), ']] ] > >');
});

t.test('no false duplicates across tags, many distinct names', async (t) => {
  const names = Array.from({ length: 3000 }, (_, k) => `n${k.toString(36)}${'x'.repeat(k % 7)}`);
  const input =
    HEADER +
    "<a x='1' y='2'/><b xmlns='urn:x' y='1' x='2'/>" +
    names.map((n, k) => `<${n} ${n}='${k}' ${names[(k + 1) % names.length]}='v'/>`).join('') +
    `<c ${Array.from({ length: 40 }, (_, k) => `a${k}='${k}'`).join(' ')}/>`;
  const run = parse(input, { chunk: 1000 });
  t.same(run.errors, []);
  t.equal(run.stanzas.length, names.length + 3);
  const bad = run.stanzas.slice(2, -1).filter((el, k) => el.name !== names[k] || el.attrs[names[k]!] !== String(k));
  t.same(bad, [], 'every name comes back right');
  t.equal(Object.keys(run.stanzas.at(-1)!.attrs).length, 40);
});

t.test('entities and character references', async (t) => {
  const run = parse(HEADER + "<message id='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#X43;'><body>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;&#128512;&#0000065;</body></message>");
  // &#X43; (capital X) is not a character reference
  t.equal(errorOf(run), 'not-well-formed');
  const ok = parse(HEADER + "<message id='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;'><body>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;&#128512;&#0000065;&#xe9;</body></message>");
  t.same(ok.errors, []);
  t.equal(ok.stanzas[0]!.attrs.id, `<>&"'AB`);
  t.equal(ok.stanzas[0]!.getChildText('body'), `<>&"'AB\ud83d\ude00\ud83d\ude00A\u00e9`);
  const bytewise = parse(HEADER + '<m>&amp;&#x1F600;</m>', { chunk: 1 });
  t.equal(bytewise.stanzas[0]!.getText(), '&\ud83d\ude00');
});

t.test('content dripping in one byte at a time costs linear time', async (t) => {
  const shapes = [
    '<m><b>' + 'x&amp;y]] \r\n'.repeat(10000) + '</b></m>',
    "<m a='" + 'xy&amp;z>"'.repeat(10000) + "'/>",
    '<m><![CDATA[' + 'x]]y]\r'.repeat(10000) + ']]></m>',
    '<m>' + '<a b="1"/>'.repeat(10000) + '</m>',
    '<m></' + 'm'.repeat(1) + ' '.repeat(50000) + '>',
  ];
  for (const shape of shapes) {
    const run = newRun({ ...LIMITS, maxStanzaBytes: 1_000_000 });
    run.parser.write(HEADER);
    const bytes = Buffer.from(shape);
    const started = Date.now();
    for (let i = 0; i < bytes.length; i++) run.parser.write(bytes.subarray(i, i + 1));
    t.same(run.errors, []);
    t.equal(run.stanzas.length, 1);
    t.ok(Date.now() - started < 3000, `${bytes.length} bytes in ${Date.now() - started} ms`);
  }
});

t.test('CDATA sections', async (t) => {
  const input = HEADER + '<message><body>a<![CDATA[<b>&amp;</b> ]] ]]]>c<![CDATA[\r\nd]]></body></message>';
  for (const chunk of [undefined, 1, 2, 3, 5]) {
    const run = parse(input, { chunk });
    t.same(run.errors, [], `chunk ${chunk}`);
    t.same(run.stanzas[0]!.getChild('body')!.children, ['a<b>&amp;</b> ]] ]c\nd'], `chunk ${chunk}`);
  }
  const unterminated = parse(HEADER + '<message><![CDATA[abc</message>');
  t.same(unterminated.errors, [], 'still inside the CDATA section');
  t.equal(unterminated.stanzas.length, 0);
});

t.test('text merging and children order', async (t) => {
  const run = parse(HEADER + '<m>a&amp;b<x/>c<![CDATA[d]]>e<y>f</y></m>', { chunk: 3 });
  const m = run.stanzas[0]!;
  t.same(
    m.children.map((c) => (typeof c === 'string' ? c : `<${c.name}>`)),
    ['a&b', '<x>', 'cde', '<y>'],
  );
});

t.test('stanza size limit', async (t) => {
  const limits = { ...LIMITS, maxStanzaBytes: 100 };
  const make = (n: number, ch = 'a') => {
    const head = '<message><body>';
    const tail = '</body></message>';
    const filler = n - head.length - tail.length;
    const unit = Buffer.byteLength(ch);
    return head + ch.repeat(Math.floor(filler / unit)) + 'a'.repeat(filler % unit) + tail;
  };
  t.equal(Buffer.byteLength(make(100)), 100);
  t.equal(Buffer.byteLength(make(100, '\u00e9')), 100);
  t.equal(Buffer.byteLength(make(101, '\ud83d\ude00')), 101);
  for (const chunk of [undefined, 1, 7]) {
    t.same(parse(HEADER + make(100), { limits, chunk }).errors, [], `exactly at the limit (chunk ${chunk})`);
    t.same(parse(HEADER + make(100, '\u00e9'), { limits, chunk }).errors, [], `multi-byte, at the limit (chunk ${chunk})`);
    t.equal(errorOf(parse(HEADER + make(101), { limits, chunk })), 'policy-violation', `one byte over (chunk ${chunk})`);
    t.equal(errorOf(parse(HEADER + make(101, '\ud83d\ude00'), { limits, chunk })), 'policy-violation', `multi-byte, one byte over (chunk ${chunk})`);
  }
  const many = parse(HEADER + make(100).repeat(50), { limits, chunk: 64 });
  t.same(many.errors, [], 'the limit is per stanza');
  t.equal(many.stanzas.length, 50);
});

t.test('1 MiB stanza in 64 KiB chunks is refused while arriving', async (t) => {
  const limit = 256 * 1024;
  const shapes: [string, string][] = [
    ['text', "<message to='a@b'><body>" + 'x'.repeat(1024 * 1024) + '</body></message>'],
    ['attribute value', "<message id='" + 'x'.repeat(1024 * 1024) + "'/>"],
    ['many children', '<message>' + '<x a="1">yy</x>'.repeat(80000) + '</message>'],
    ['multi-byte text', '<message><body>' + '\u00e9\ud83d\ude00'.repeat(180000) + '</body></message>'],
    ['end tag', '<message></' + 'x'.repeat(1024 * 1024) + '>'],
    ['element name', '<' + 'x'.repeat(1024 * 1024) + '/>'],
  ];
  for (const [name, stanza] of shapes) {
    const run = newRun({ ...LIMITS, maxStanzaBytes: limit });
    run.parser.write(HEADER);
    const bytes = Buffer.from(stanza);
    let written = 0;
    let maxBuffered = 0;
    for (let i = 0; i < bytes.length && run.errors.length === 0; i += 64 * 1024) {
      run.parser.write(bytes.subarray(i, i + 64 * 1024));
      written = Math.min(bytes.length, i + 64 * 1024);
      maxBuffered = Math.max(maxBuffered, run.parser.bytesBuffered);
    }
    t.equal(errorOf(run), 'policy-violation', `${name}: refused`);
    t.ok(written <= limit + 64 * 1024, `${name}: refused after ${written} bytes`);
    t.ok(maxBuffered < 2 * limit, `${name}: at most ${maxBuffered} bytes buffered`);
    t.equal(run.parser.bytesBuffered, 0, `${name}: buffers released after the error`);
  }
});

t.test('a huge attribute value dripping in stays linear and bounded', async (t) => {
  const limit = 64 * 1024;
  const run = newRun({ ...LIMITS, maxStanzaBytes: limit });
  run.parser.write(HEADER + "<message id='");
  const started = Date.now();
  let maxBuffered = 0;
  for (let i = 0; i < 2 * limit && run.errors.length === 0; i += 16) {
    run.parser.write('x'.repeat(16));
    maxBuffered = Math.max(maxBuffered, run.parser.bytesBuffered);
  }
  t.equal(errorOf(run), 'policy-violation');
  t.ok(maxBuffered <= limit, `buffered at most ${maxBuffered}`);
  t.ok(Date.now() - started < 2000, 'fast');
});

t.test('stream header size limit', async (t) => {
  const partial = "<stream:stream xmlns='jabber:client' to='" + 'x'.repeat(4096);
  t.equal(errorOf(parse(partial)), 'policy-violation', '4 KiB partial header');
  t.equal(errorOf(parse(partial, { chunk: 512 })), 'policy-violation', '4 KiB partial header in pieces');
  t.equal(errorOf(parse(' '.repeat(MAX_STREAM_HEADER_BYTES + 1))), 'policy-violation', 'endless whitespace before the header');
  const big = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='" + 'x'.repeat(MAX_STREAM_HEADER_BYTES - 80) + "'>";
  t.ok(Buffer.byteLength(big) <= MAX_STREAM_HEADER_BYTES);
  t.same(parse(big).errors, [], 'a header up to the limit is fine');
  const run = newRun();
  run.parser.write(partial.slice(0, 100));
  t.ok(run.parser.bytesBuffered > 0 && run.parser.bytesBuffered <= 100, 'a partial header is held');
});

t.test('depth limit', async (t) => {
  const limits = { ...LIMITS, maxDepth: 3 };
  t.same(parse(HEADER + '<a><b><c/></b></a>', { limits }).errors, [], 'depth 3 is fine');
  t.equal(errorOf(parse(HEADER + '<a><b><c><d/></c></b></a>', { limits })), 'policy-violation', 'depth 4 is refused');
  t.equal(errorOf(parse(HEADER + '<a>' + '<b>'.repeat(100000), { limits: LIMITS, chunk: 4096 })), 'policy-violation', 'deep nesting with the default limit');
});

t.test('attribute count limit', async (t) => {
  const limits = { ...LIMITS, maxAttributes: 3 };
  t.same(parse(HEADER + "<a x='1' y='2' z='3'/>", { limits }).errors, []);
  t.equal(errorOf(parse(HEADER + "<a w='0' x='1' y='2' z='3'/>", { limits })), 'policy-violation');
  t.equal(errorOf(parse(HEADER + "<a><b w='0' x='1' y='2' z='3'/></a>", { limits })), 'policy-violation', 'on children too');
});

t.test('reset() starts a new stream', async (t) => {
  const run = newRun();
  run.parser.write(HEADER + '<message><body>one</body></message><presence');
  t.ok(run.parser.bytesBuffered > 0);
  run.parser.reset();
  t.equal(run.parser.bytesBuffered, 0, 'partial input forgotten');
  run.parser.write(HEADER + '<message><body>two</body></message>');
  t.same(run.errors, []);
  t.same(
    run.events.map((e) => e.split(' ')[0]),
    ['start', 'stanza', 'start', 'stanza'],
  );
  t.equal(run.stanzas[1]!.getChildText('body'), 'two');

  const noDecl = newRun();
  noDecl.parser.write(HEADER);
  noDecl.parser.reset();
  noDecl.parser.write(HEADER.slice(21) + '<presence/>');
  t.same(noDecl.errors, [], 'the declaration is optional');
  t.equal(noDecl.stanzas.length, 1);

  const afterError = newRun();
  afterError.parser.write(HEADER + '<!-- x -->');
  t.equal(errorOf(afterError), 'restricted-xml');
  afterError.parser.reset();
  afterError.parser.write(HEADER + '<presence/>');
  t.equal(afterError.stanzas.length, 1, 'usable again after an error and reset');

  const midChar = newRun();
  midChar.parser.write(Buffer.concat([Buffer.from(HEADER + '<m>'), Buffer.from('\u00e9').subarray(0, 1)]));
  midChar.parser.reset();
  midChar.parser.write(HEADER + '<presence/>');
  t.same(midChar.errors, [], 'a partial character is forgotten too');
});

t.test('reset() from a callback drops the rest of the chunk (no STARTTLS injection)', async (t) => {
  const seen: string[] = [];
  const parser: XmlStreamParser = new XmlStreamParser(LIMITS, {
    streamStart: (h) => seen.push(`start ${h.attrs.to}`),
    stanza: (el) => {
      seen.push(el.name);
      if (el.name === 'starttls') parser.reset();
    },
    streamEnd: () => seen.push('end'),
    error: (e) => seen.push(`error ${e.condition}`),
  });
  parser.write(HEADER + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>injected</message>");
  t.same(seen, ['start example.com', 'starttls']);
  t.equal(parser.bytesBuffered, 0);
  parser.write(HEADER.replace('example.com', 'after.tls') + '<presence/>');
  t.same(seen, ['start example.com', 'starttls', 'start after.tls', 'presence']);
});

t.test('only the first error is reported and later input is ignored', async (t) => {
  const run = newRun();
  run.parser.write(HEADER + '<a></b>');
  run.parser.write('<!-- --><presence/>');
  run.parser.write(Buffer.from([0xff, 0xfe]));
  t.same(run.events.slice(1), ['error not-well-formed']);
  t.type(run.errors[0], XmlStreamError);
  t.type(run.errors[0], Error);
  t.ok(run.errors[0]!.message.length > 0);
});

t.test('an XML declaration with encoding and standalone', async (t) => {
  const run = parse('<?xml version="1.0" encoding="utf-8" standalone="yes" ?>\n' + HEADER.slice(21));
  t.same(run.errors, []);
  t.ok(run.header);
  t.same(parse('\uFEFF' + HEADER).errors, [], 'a byte order mark is skipped');
});

t.test('bytesBuffered', async (t) => {
  const run = newRun();
  run.parser.write(HEADER);
  t.equal(run.parser.bytesBuffered, 0);
  run.parser.write("<message to='a'");
  t.equal(run.parser.bytesBuffered, Buffer.byteLength("<message to='a'"), 'partial start tag held');
  run.parser.write('><body>some text');
  t.equal(run.parser.bytesBuffered, 0, 'text is consumed as it arrives');
  run.parser.write(' &am');
  t.equal(run.parser.bytesBuffered, 3, 'a partial reference is held');
  run.parser.write('p;</body></message>');
  t.equal(run.parser.bytesBuffered, 0);
  t.equal(run.stanzas[0]!.getChildText('body'), 'some text &');
});

t.test('a throwing handler propagates and stops the parser', async (t) => {
  let stanzas = 0;
  const parser = new XmlStreamParser(LIMITS, {
    streamStart() {},
    stanza() {
      stanzas++;
      throw new Error('boom');
    },
    streamEnd() {},
    error() {},
  });
  t.throws(() => parser.write(HEADER + '<a/><b/>'), /boom/);
  parser.write('<c/>');
  t.equal(stanzas, 1);
});
