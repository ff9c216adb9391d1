import t from 'tap';
import { Jid, JidError, makeJid, namesBareJid, parseJid, tryParseJid } from '../../src/jid.js';

type Parts = [local: string, domain: string, resource: string];

t.test('RFC 7622 §3.5 examples: valid JIDs', async (t) => {
  const cases: Array<[string, Parts, string]> = [
    // [input, [local, domain, resource], canonical string]
    ['juliet@example.com', ['juliet', 'example.com', ''], 'juliet@example.com'],
    ['juliet@example.com/foo', ['juliet', 'example.com', 'foo'], 'juliet@example.com/foo'],
    ['juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar'], 'juliet@example.com/foo bar'],
    ['juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar'], 'juliet@example.com/foo@bar'],
    ['foo\\20bar@example.com', ['foo\\20bar', 'example.com', ''], 'foo\\20bar@example.com'],
    ['fussball@example.com', ['fussball', 'example.com', ''], 'fussball@example.com'],
    ['fußball@example.com', ['fußball', 'example.com', ''], 'fußball@example.com'],
    ['π@example.com', ['π', 'example.com', ''], 'π@example.com'],
    ['Σ@example.com/foo', ['σ', 'example.com', 'foo'], 'σ@example.com/foo'],
    ['σ@example.com/foo', ['σ', 'example.com', 'foo'], 'σ@example.com/foo'],
    ['ς@example.com/foo', ['ς', 'example.com', 'foo'], 'ς@example.com/foo'],
    ['king@example.com/♚', ['king', 'example.com', '♚'], 'king@example.com/♚'],
    ['example.com', ['', 'example.com', ''], 'example.com'],
    ['example.com/foobar', ['', 'example.com', 'foobar'], 'example.com/foobar'],
    ['a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net'], 'a.example.com/b@example.net'],
    // Example 18 of RFC 7622 was removed by verified erratum 4560:
    // OpaqueString allows a leading space in the resourcepart.
    ['juliet@example.com/ foo', ['juliet', 'example.com', ' foo'], 'juliet@example.com/ foo'],
  ];
  for (const [input, [local, domain, resource], str] of cases) {
    const j = parseJid(input);
    t.same([j.local, j.domain, j.resource], [local, domain, resource], `parts of ${input}`);
    t.equal(j.toString(), str, `string of ${input}`);
  }
});

t.test('RFC 7622 §3.5 examples: invalid JIDs', async (t) => {
  const cases: Array<[string, string, string]> = [
    // [description, input, part at fault]
    ['quotation marks in localpart', '"juliet"@example.com', 'localpart'],
    ['space in localpart', 'foo bar@example.com', 'localpart'],
    ['zero-length localpart and resourcepart', '@example.com/', 'localpart'],
    ['compatibility character U+2163 in localpart', 'henry\u2163@example.com', 'localpart'],
    ['symbol in localpart', '♚@example.com', 'localpart'],
    ['zero-length domainpart', 'juliet@', 'domainpart'],
    ['zero-length domainpart with resource', '/foobar', 'domainpart'],
  ];
  for (const [name, input, part] of cases) {
    t.throws(() => parseJid(input), { name: 'JidError', part }, name);
    t.equal(tryParseJid(input), null, `tryParseJid: ${name}`);
  }
});

t.test('more invalid JIDs', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['empty string', '', 'domainpart'],
    ['empty localpart', '@example.com', 'localpart'],
    ['empty resourcepart', 'example.com/', 'resourcepart'],
    ['empty resourcepart with localpart', 'juliet@example.com/', 'resourcepart'],
    ['second @ ends up in the domainpart', 'a@b@c', 'domainpart'],
    ['ampersand in localpart', 'a&b@example.com', 'localpart'],
    ['apostrophe in localpart', "o'brien@example.com", 'localpart'],
    ['colon in localpart', 'a:b@example.com', 'localpart'],
    ['less-than in localpart', 'a<b@example.com', 'localpart'],
    ['greater-than in localpart', 'a>b@example.com', 'localpart'],
    ['fullwidth @ maps to a forbidden @', 'a\uff20b@example.com', 'localpart'],
    ['control character in localpart', 'a\u0000b@example.com', 'localpart'],
    ['space in domainpart', 'juliet@exa mple.com', 'domainpart'],
    ['empty domain label', 'juliet@example..com', 'domainpart'],
    ['control character in resourcepart', 'juliet@example.com/a\u0007', 'resourcepart'],
    ['default ignorable in resourcepart', 'juliet@example.com/a\u200b', 'resourcepart'],
    ['unassigned code point in resourcepart', 'juliet@example.com/\u0378', 'resourcepart'],
    ['1024-octet localpart', `${'a'.repeat(1024)}@example.com`, 'localpart'],
    ['1024-octet non-ASCII localpart', `${'é'.repeat(512)}@example.com`, 'localpart'],
    ['1024-octet resourcepart', `juliet@example.com/${'r'.repeat(1024)}`, 'resourcepart'],
    ['over-long non-ASCII resourcepart', `juliet@example.com/${'♚'.repeat(342)}`, 'resourcepart'],
    ['huge raw localpart', `${'Ａ'.repeat(5000)}@example.com`, 'localpart'],
  ];
  for (const [name, input, part] of cases) {
    t.throws(() => parseJid(input), { name: 'JidError', part }, name);
  }
  t.throws(() => parseJid('foo bar@example.com'), JidError, 'is a JidError instance');
  try {
    parseJid('foo bar@example.com');
  } catch (e) {
    t.match((e as JidError).reason, /localpart/, 'reason names the part');
  }
});

t.test('preparation and normalization', async (t) => {
  const cases: Array<[string, string, string]> = [
    // [description, input, canonical string]
    ['fullwidth localpart is width-mapped and lowered', 'ＪＵＬＩＥＴ@example.com', 'juliet@example.com'],
    ['upper-case ASCII localpart lowered', 'Juliet@example.com', 'juliet@example.com'],
    ['domain upper-case lowered', 'juliet@EXAMPLE.COM', 'juliet@example.com'],
    ['domain trailing dot stripped', 'juliet@example.com.', 'juliet@example.com'],
    ['domain upper-case and trailing dot', 'juliet@Example.Com./Balcony', 'juliet@example.com/Balcony'],
    ['resource case preserved', 'juliet@example.com/Balcony', 'juliet@example.com/Balcony'],
    ['non-ASCII space in resource mapped', 'juliet@example.com/a\u00a0b', 'juliet@example.com/a b'],
    ['NFC in localpart', 'jule\u0301@example.com', 'julé@example.com'],
    ['NFC in resourcepart', 'juliet@example.com/e\u0301', 'juliet@example.com/é'],
    ['IDN domain kept in Unicode', 'juliet@MÜNCHEN.de', 'juliet@münchen.de'],
    ['A-label domain converted to U-label', 'juliet@xn--mnchen-3ya.de', 'juliet@münchen.de'],
    ['IPv4 domain', 'juliet@192.0.2.1/r', 'juliet@192.0.2.1/r'],
    ['IPv6 domain', 'juliet@[2001:DB8::1]/r', 'juliet@[2001:db8::1]/r'],
    ['resource may contain / and @', 'juliet@example.com/a/b@c', 'juliet@example.com/a/b@c'],
    ['XEP-0106 escapes pass through', 'c\\3a\\5cdir@example.com', 'c\\3a\\5cdir@example.com'],
    ['RTL localpart', 'שלום@example.com', 'שלום@example.com'],
    ['1023-octet localpart', `${'a'.repeat(1023)}@example.com`, `${'a'.repeat(1023)}@example.com`],
    ['1023-octet resourcepart', `a@example.com/${'r'.repeat(1023)}`, `a@example.com/${'r'.repeat(1023)}`],
  ];
  for (const [name, input, want] of cases) {
    t.equal(parseJid(input).toString(), want, name);
  }
});

t.test('Jid object API', async (t) => {
  const full = parseJid('juliet@example.com/balcony');
  t.equal(full.local, 'juliet');
  t.equal(full.domain, 'example.com');
  t.equal(full.resource, 'balcony');
  t.notOk(full.isBare, 'full JID is not bare');
  t.equal(String(full), 'juliet@example.com/balcony', 'String()');
  t.equal(`${full}`, 'juliet@example.com/balcony', 'template literal');
  t.equal(JSON.stringify({ j: full }), '{"j":"juliet@example.com/balcony"}', 'toJSON');

  const bare = full.bare;
  t.ok(bare.isBare, 'bare is bare');
  t.equal(bare.toString(), 'juliet@example.com');
  t.equal(bare.resource, '');
  t.equal(full.bare, bare, 'bare is cached');
  t.equal(bare.bare, bare, 'bare of a bare JID is itself');

  const other = bare.withResource('Orchard\u00a0Tree');
  t.equal(other.toString(), 'juliet@example.com/Orchard Tree', 'withResource prepares the resource');
  t.equal(full.withResource('balcony'), full, 'withResource with the same resource returns itself');
  t.throws(() => bare.withResource(''), { name: 'JidError', part: 'resourcepart' }, 'withResource rejects empty');
  t.throws(() => bare.withResource('a\u0007'), { name: 'JidError', part: 'resourcepart' });

  t.ok(full.equals(parseJid('JULIET@EXAMPLE.COM./balcony')), 'equals after preparation');
  t.notOk(full.equals(parseJid('juliet@example.com/Balcony')), 'resource is case-sensitive');
  t.notOk(full.equals(bare), 'full != bare');
  t.ok(bare.equals(full.bare), 'bare equals bare');

  const domainOnly = parseJid('example.com');
  t.equal(domainOnly.local, '');
  t.ok(domainOnly.isBare);
  t.equal(domainOnly.withResource('x').toString(), 'example.com/x');

  t.equal(Jid.parse('Romeo@Example.net').toString(), 'romeo@example.net', 'Jid.parse');
  t.ok(Jid.parse('a@b/c') instanceof Jid);
});

t.test('makeJid', async (t) => {
  t.equal(makeJid('Juliet', 'Example.COM.').toString(), 'juliet@example.com');
  t.equal(makeJid('juliet', 'example.com', 'balcony').toString(), 'juliet@example.com/balcony');
  t.equal(makeJid('', 'example.com').toString(), 'example.com', 'empty local means none');
  t.equal(makeJid('', 'example.com', 'r').toString(), 'example.com/r');
  t.equal(makeJid('ＪＵＬＩＥＴ', 'example.com').local, 'juliet');
  t.ok(makeJid('juliet', 'example.com', 'r').equals(parseJid('juliet@example.com/r')));
  t.throws(() => makeJid('a@b', 'example.com'), { name: 'JidError', part: 'localpart' }, '@ in local');
  t.throws(() => makeJid('a/b', 'example.com'), { name: 'JidError', part: 'localpart' }, '/ in local');
  t.throws(() => makeJid('juliet', ''), { name: 'JidError', part: 'domainpart' }, 'empty domain');
  t.throws(() => makeJid('juliet', 'a/b'), { name: 'JidError', part: 'domainpart' }, '/ in domain');
  t.throws(() => makeJid('juliet', 'example.com', '\u0000'), { name: 'JidError', part: 'resourcepart' });
});

t.test('tryParseJid', async (t) => {
  t.equal(tryParseJid('juliet@example.com/r')?.toString(), 'juliet@example.com/r');
  t.equal(tryParseJid('juliet@'), null);
  t.equal(tryParseJid('@'), null);
  t.equal(tryParseJid('/'), null);
});

t.test('round trip: parse(toString()) is stable', async (t) => {
  for (const s of ['ＪＵＬＩＥＴ@EXAMPLE.com./Res', 'Σ@example.com/foo', 'juliet@xn--mnchen-3ya.de/\u00a0x', 'example.com', 'a.example.com/b@example.net']) {
    const j = parseJid(s);
    const again = parseJid(j.toString());
    t.ok(j.equals(again), `stable: ${s}`);
    t.equal(again.toString(), j.toString());
  }
});

t.test('namesBareJid: the same answer as parsing and comparing', async (t) => {
  const alice = parseJid('alice@example.org');
  const cases: [string, boolean][] = [
    ['alice@example.org', true],
    ['Alice@EXAMPLE.org', true],
    ['alice@example.org.', true],
    ['alice@example.org/phone', false],
    ['bob@example.org', false],
    ['example.org', false],
    ['ａlice@example.org', true], // fullwidth a: PRECIS width mapping
    ['alice@éxample.org', false],
    ['a b@example.org', false],
  ];
  for (const [text, expected] of cases) {
    t.equal(namesBareJid(text, alice), expected, text);
    t.equal(namesBareJid(text, alice), tryParseJid(text)?.equals(alice) ?? false, `${text}: as parsed`);
  }
});
