import t from 'tap';
import { PrecisError, prepareDomain, prepareOpaqueString, prepareUsernameCaseMapped } from '../../src/precis.js';

t.test('UsernameCaseMapped: valid strings', async (t) => {
  const cases: Array<[string, string, string]> = [
    // [description, input, expected]
    ['plain ASCII', 'juliet', 'juliet'],
    ['ASCII upper-case is lowered', 'JuLiEt', 'juliet'],
    ['ASCII punctuation is PVALID', 'foo\\20bar', 'foo\\20bar'],
    ['printable ASCII symbols', 'a!#$%*+=?^_`{|}~b', 'a!#$%*+=?^_`{|}~b'],
    ['sharp s is kept (exception PVALID)', 'fußball', 'fußball'],
    ['Greek pi', 'π', 'π'],
    ['capital sigma lowered', 'Σ', 'σ'],
    ['final sigma kept', 'ς', 'ς'],
    ['final sigma context in toLowerCase', 'ΟΔΟΣ', 'οδος'],
    ['fullwidth letters width-mapped', 'ＪＵＬＩＥＴ', 'juliet'],
    ['fullwidth digits width-mapped', '１２３', '123'],
    ['halfwidth katakana width-mapped', 'ｶ', 'カ'],
    ['NFC composes', 'e\u0301', 'é'],
    ['upper-case with combining mark', 'E\u0301', 'é'],
    ['Cyrillic', 'ПЁТР', 'пётр'],
    ['Han', '北京', '北京'],
    ['Hebrew (RTL, Bidi Rule ok)', 'שלום', 'שלום'],
    ['Hebrew followed by digits', 'שלום12', 'שלום12'],
    ['Arabic', 'مرحبا', 'مرحبا'],
    ['Arabic-Indic digits after Arabic letters', 'مرحبا١٢', 'مرحبا١٢'],
    ['LTR string with European digits', 'abc123', 'abc123'],
    ['middle dot between l and l', 'l·l', 'l·l'],
    ['Greek keraia before Greek', '\u0375α', '\u0375α'],
    ['Hebrew geresh after Hebrew', 'א\u05f3', 'א\u05f3'],
    ['katakana middle dot with katakana', 'カ・カ', 'カ・カ'],
    ['ZWJ after virama', 'क्\u200dष', 'क्\u200dष'],
    ['ZWNJ after virama', 'क्\u200cष', 'क्\u200cष'],
    ['ZWNJ between Arabic letters', 'ب\u200cب', 'ب\u200cب'],
  ];
  for (const [name, input, want] of cases) {
    t.equal(prepareUsernameCaseMapped(input), want, name);
  }
});

t.test('UsernameCaseMapped: invalid strings', async (t) => {
  const cases: Array<[string, string, string]> = [
    // [description, input, expected reason]
    ['empty', '', 'empty'],
    ['ASCII space', 'foo bar', 'disallowed'],
    ['non-ASCII space', 'foo\u00a0bar', 'disallowed'],
    ['ideographic space (width-mapped to space)', 'foo\u3000bar', 'disallowed'],
    ['tab (control)', 'foo\tbar', 'disallowed'],
    ['DEL (control)', 'foo\u007f', 'disallowed'],
    ['symbol', '♚', 'disallowed'],
    ['emoji', 'a😀', 'disallowed'],
    ['non-ASCII punctuation', 'a\u2014b', 'disallowed'],
    ['Roman numeral four (HasCompat)', 'henry\u2163', 'disallowed'],
    ['ligature fi (HasCompat)', '\ufb01', 'disallowed'],
    ['superscript two (HasCompat)', 'a\u00b2', 'disallowed'],
    ['titlecase digraph (lowers to HasCompat)', '\u01c5', 'disallowed'],
    ['default ignorable (soft hyphen)', 'a\u00adb', 'disallowed'],
    ['zero width space', 'a\u200bb', 'disallowed'],
    ['old Hangul jamo', 'a\u1100', 'disallowed'],
    ['unassigned code point', 'a\u0378', 'unassigned'],
    ['noncharacter', 'a\ufdd0', 'disallowed'],
    ['private use', 'a\ue000', 'disallowed'],
    ['lone surrogate', 'a\ud800', 'disallowed'],
    ['Arabic tatweel (exception DISALLOWED)', 'ب\u0640ب', 'disallowed'],
    ['middle dot not between l', 'a·b', 'context'],
    ['keraia not before Greek', '\u0375a', 'context'],
    ['geresh not after Hebrew', 'a\u05f3', 'context'],
    ['katakana middle dot alone', 'a・b', 'context'],
    ['ZWJ not after virama', 'a\u200db', 'context'],
    ['ZWNJ between Latin letters', 'a\u200cb', 'context'],
    ['ZWJ after a precomposed letter', '\u00e9\u200db', 'context'],
    ['mixed Arabic-Indic and extended digits', 'ب\u0661\u06f1', 'context'],
    ['Bidi: LTR string containing RTL', 'aשלום', 'bidi'],
    ['Bidi: RTL string ending with L', 'שלוםa', 'bidi'],
    ['Bidi: starts with a digit, has RTL', '1שלום', 'bidi'],
    ['Bidi: RTL string mixing EN and AN', 'ب1\u0661', 'bidi'],
  ];
  for (const [name, input, reason] of cases) {
    t.throws(() => prepareUsernameCaseMapped(input), { name: 'PrecisError', reason }, name);
  }
  const err = (() => {
    try {
      prepareUsernameCaseMapped('a b');
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof PrecisError, 'throws a PrecisError instance');
  t.equal((err as PrecisError).codePoint, 0x20, 'reports the offending code point');
});

t.test('UsernameCaseMapped is idempotent', async (t) => {
  for (const s of ['juliet', 'ＪＵＬＩＥＴ', 'Σ', 'E\u0301', 'fußball', 'שלום', 'ΟΔΟΣ']) {
    const once = prepareUsernameCaseMapped(s);
    t.equal(prepareUsernameCaseMapped(once), once, `stable: ${s}`);
  }
});

t.test('OpaqueString: valid strings', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['plain ASCII', 'balcony', 'balcony'],
    ['case preserved', 'Balcony', 'Balcony'],
    ['ASCII space inside', 'foo bar', 'foo bar'],
    ['leading space (allowed by OpaqueString)', ' foo', ' foo'],
    ['ASCII punctuation incl. @ and /', 'foo@bar/baz', 'foo@bar/baz'],
    ['symbol', '♚', '♚'],
    ['emoji', 'phone 📱', 'phone 📱'],
    ['non-ASCII space mapped to U+0020', 'foo\u00a0bar', 'foo bar'],
    ['ideographic space mapped to U+0020', 'foo\u3000bar', 'foo bar'],
    ['NFC composes', 'e\u0301', 'é'],
    ['HasCompat allowed (not mapped)', 'henry\u2163', 'henry\u2163'],
    ['fullwidth kept (no width mapping)', 'ＪＵＬＩＥＴ', 'ＪＵＬＩＥＴ'],
    ['titlecase letter', '\u01c5', '\u01c5'],
    ['RTL without Bidi Rule', 'aשלום', 'aשלום'],
  ];
  for (const [name, input, want] of cases) {
    t.equal(prepareOpaqueString(input), want, name);
  }
});

t.test('OpaqueString: invalid strings', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['empty', '', 'empty'],
    ['control character', 'foo\u0007', 'disallowed'],
    ['newline', 'foo\nbar', 'disallowed'],
    ['default ignorable (ZWSP)', 'foo\u200b', 'disallowed'],
    ['byte order mark', '\ufefffoo', 'disallowed'],
    ['unassigned', 'foo\u0378', 'unassigned'],
    ['old Hangul jamo', '\u1100', 'disallowed'],
    ['private use', '\ue000', 'disallowed'],
    ['line separator', 'a\u2028b', 'disallowed'],
  ];
  for (const [name, input, reason] of cases) {
    t.throws(() => prepareOpaqueString(input), { name: 'PrecisError', reason }, name);
  }
});

t.test('prepareDomain: valid', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['plain', 'example.com', 'example.com'],
    ['single label', 'localhost', 'localhost'],
    ['upper-case lowered', 'EXAMPLE.Com', 'example.com'],
    ['trailing dot stripped', 'example.com.', 'example.com'],
    ['upper-case and trailing dot', 'Example.COM.', 'example.com'],
    ['hyphen and digits inside labels', 'a-1.b2.example', 'a-1.b2.example'],
    ['IDN kept as U-label', 'münchen.de', 'münchen.de'],
    ['IDN upper-case lowered', 'MÜNCHEN.DE', 'münchen.de'],
    ['A-label converted to U-label', 'xn--mnchen-3ya.de', 'münchen.de'],
    ['sharp s not mapped (nontransitional)', 'fußball.de', 'fußball.de'],
    ['fullwidth and ideographic full stop', 'ＥＸＡＭＰＬＥ。ｃｏｍ', 'example.com'],
    ['NFC applied', 'mu\u0308nchen.de', 'münchen.de'],
    ['IPv4 literal', '192.0.2.1', '192.0.2.1'],
    ['IPv4 literal with trailing dot', '192.0.2.1.', '192.0.2.1'],
    ['IPv6 literal', '[2001:db8::1]', '[2001:db8::1]'],
    ['IPv6 literal canonicalized', '[2001:DB8:0:0::1]', '[2001:db8::1]'],
    ['IPv6 loopback', '[::1]', '[::1]'],
    ['RTL domain', 'שלום.example', 'שלום.example'],
    ['63-octet label', `${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ];
  for (const [name, input, want] of cases) {
    t.equal(prepareDomain(input), want, name);
  }
});

t.test('prepareDomain: invalid', async (t) => {
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['only a dot', '.'],
    ['leading dot', '.example.com'],
    ['empty label', 'a..b'],
    ['two trailing dots', 'example.com..'],
    ['64-octet label', `${'a'.repeat(64)}.com`],
    ['total over 1023 octets', Array.from({ length: 20 }, () => 'a'.repeat(60)).join('.')],
    ['space', 'exa mple.com'],
    ['at sign', 'b@c'],
    ['slash (URL delimiter)', 'a/b'],
    ['slash after non-ASCII', 'ü/b'],
    ['question mark', 'a?b'],
    ['hash', 'a#b'],
    ['percent escape', 'a%41.com'],
    ['port', 'example.com:5222'],
    ['fullwidth solidus', 'a\uff0fb'],
    ['underscore', 'x_y.com'],
    ['leading hyphen', '-x.com'],
    ['trailing hyphen', 'x-.com'],
    ['symbol', '♚.com'],
    ['emoji', 'a😀.com'],
    ['compatibility character kept by UTS 46', 'a\u00bd.com'],
    ['Bidi domain with a label starting with a digit', '1a.שלום'],
    ['Bidi label mixing LTR and RTL', 'aשלום.example'],
    ['bogus A-label', 'xn--zz.com'],
    ['A-label decoding to ASCII', 'xn--invalid-.com'],
    ['short IPv4', '1.2.3'],
    ['hex IPv4', '0x7f.1'],
    ['IPv4 octet out of range', '256.1.1.1'],
    ['IPv4 leading zero', '01.2.3.4'],
    ['numeric TLD', 'example.123'],
    ['unterminated IPv6', '[::1'],
    ['bad IPv6', '[1:2:3]'],
    ['IPv6 with zone', '[fe80::1%25eth0]'],
    ['IPv6 with userinfo trick', '[::1]@evil'],
  ];
  for (const [name, input] of cases) {
    t.throws(() => prepareDomain(input), { name: 'PrecisError' }, name);
  }
});
