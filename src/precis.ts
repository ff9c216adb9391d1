/**
 * PRECIS string preparation and enforcement.
 *
 * Implements, from the specifications:
 *  - RFC 8264 (PRECIS framework): the IdentifierClass and FreeformClass
 *    string classes, including the derived-property algorithm (§8), the
 *    IDNA exception list and contextual rules inherited from RFC 5892;
 *  - RFC 8265 §3.3 UsernameCaseMapped and §4.2 OpaqueString profiles;
 *  - RFC 5893 §2 (the "Bidi Rule");
 *  - domain name preparation for XMPP domainparts (RFC 7622 §3.2) on top of
 *    Node's UTS #46 / IDNA implementation (`node:url` domainToASCII).
 *
 * Unicode character properties come from the JavaScript engine (`\p{...}`
 * regular expressions and `String.prototype.normalize`), so the repertoire
 * follows the Unicode version of the running Node.js.  Properties that
 * ECMAScript does not expose (Bidi_Class, Joining_Type,
 * Canonical_Combining_Class) are derived or approximated below; see the
 * comments next to each.
 */

import { domainToASCII, domainToUnicode } from 'node:url';

/** Thrown when a string cannot be prepared/enforced under a profile. */
export class PrecisError extends Error {
  override readonly name = 'PrecisError';
  /** Short machine-readable cause, e.g. 'empty', 'disallowed', 'bidi'. */
  readonly reason: string;
  /** The offending code point, when there is one. */
  readonly codePoint: number | undefined;

  constructor(reason: string, message: string, codePoint?: number) {
    super(message);
    this.reason = reason;
    this.codePoint = codePoint;
  }
}

// ---------------------------------------------------------------------------
// Helpers

function hex(cp: number): string {
  return 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
}

function disallowed(cp: number, why: string): PrecisError {
  return new PrecisError('disallowed', `disallowed code point ${hex(cp)} (${why})`, cp);
}

/** Only printable ASCII (0x21..0x7E). */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
/** Printable ASCII plus SPACE (0x20..0x7E). */
const PRINTABLE_ASCII_SP = /^[\x20-\x7e]+$/;
const HAS_UPPER_ASCII = /[A-Z]/;

// ---------------------------------------------------------------------------
// Character categories used by the derived-property algorithm (RFC 8264 §8,
// §9). Each regex is tested against a single code point.

const RE_UNASSIGNED = /^\p{Cn}$/u;
const RE_CONTROL = /^\p{Cc}$/u;
/** PrecisIgnorableProperties: Default_Ignorable_Code_Point or Noncharacter. */
const RE_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
/** LetterDigits (RFC 8264 §9.1). */
const RE_LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
/** OtherLetterDigits (§9.18). */
const RE_OTHER_LETTER_DIGITS = /^[\p{Lt}\p{Nl}\p{No}\p{Me}]$/u;
/** Spaces (§9.14). */
const RE_SPACES = /^\p{Zs}$/u;
/** Symbols (§9.15). */
const RE_SYMBOLS = /^[\p{Sm}\p{Sc}\p{Sk}\p{So}]$/u;
/** Punctuation (§9.16). */
const RE_PUNCTUATION = /^\p{P}$/u;

/** OldHangulJamo (§9.9): Hangul_Syllable_Type L, V or T. */
function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

/** HasCompat (§9.17): the code point changes under NFKC. */
function hasCompat(ch: string): boolean {
  return ch.normalize('NFKC') !== ch;
}

// Derived property values used in the exception table. (CONTEXTJ applies
// only to U+200C / U+200D, which are handled directly.)
const PVALID = 0;
const CONTEXTO = 1;
const DISALLOWED = 2;

/** Exceptions (RFC 5892 §2.6, referenced by RFC 8264 §9.6). */
const EXCEPTIONS = new Map<number, number>([
  // PVALID
  [0x00df, PVALID],
  [0x03c2, PVALID],
  [0x06fd, PVALID],
  [0x06fe, PVALID],
  [0x0f0b, PVALID],
  [0x3007, PVALID],
  // CONTEXTO
  [0x00b7, CONTEXTO],
  [0x0375, CONTEXTO],
  [0x05f3, CONTEXTO],
  [0x05f4, CONTEXTO],
  [0x30fb, CONTEXTO],
  // DISALLOWED
  [0x0640, DISALLOWED],
  [0x07fa, DISALLOWED],
  [0x302e, DISALLOWED],
  [0x302f, DISALLOWED],
  [0x3031, DISALLOWED],
  [0x3032, DISALLOWED],
  [0x3033, DISALLOWED],
  [0x3034, DISALLOWED],
  [0x3035, DISALLOWED],
  [0x303b, DISALLOWED],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, CONTEXTO);
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, CONTEXTO);

// ---------------------------------------------------------------------------
// Properties ECMAScript does not expose directly.

/**
 * Build a regex matching any of the given scripts, skipping names the running
 * engine does not know (newer Unicode versions add scripts).
 */
function scriptRegex(names: readonly string[]): RegExp {
  const parts: string[] = [];
  for (const n of names) {
    try {
      new RegExp(`\\p{Script=${n}}`, 'u');
      parts.push(`\\p{Script=${n}}`);
    } catch {
      // unknown to this engine: skip
    }
  }
  return new RegExp(`^[${parts.join('')}]$`, 'u');
}

/** Scripts whose letters have Bidi_Class R or AL. */
const RE_RTL_SCRIPT = scriptRegex([
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Nko',
  'Samaritan',
  'Mandaic',
  'Cypriot',
  'Imperial_Aramaic',
  'Phoenician',
  'Kharoshthi',
  'Old_South_Arabian',
  'Old_North_Arabian',
  'Avestan',
  'Inscriptional_Parthian',
  'Inscriptional_Pahlavi',
  'Psalter_Pahlavi',
  'Old_Turkic',
  'Lydian',
  'Meroitic_Cursive',
  'Meroitic_Hieroglyphs',
  'Manichaean',
  'Nabataean',
  'Palmyrene',
  'Hatran',
  'Mende_Kikakui',
  'Old_Hungarian',
  'Adlam',
  'Hanifi_Rohingya',
  'Sogdian',
  'Old_Sogdian',
  'Elymaic',
  'Chorasmian',
  'Yezidi',
  'Old_Uyghur',
  'Garay',
]);

/** Cursive-joining scripts (letters with Joining_Type D, L or R). */
const RE_JOINING_SCRIPT = scriptRegex([
  'Arabic',
  'Syriac',
  'Nko',
  'Mongolian',
  'Mandaic',
  'Manichaean',
  'Psalter_Pahlavi',
  'Phags_Pa',
  'Sogdian',
  'Adlam',
  'Hanifi_Rohingya',
  'Chorasmian',
  'Old_Uyghur',
]);

const RE_LETTER = /^\p{L}$/u;
const RE_MARK = /^\p{M}$/u;
const RE_NSM = /^[\p{Mn}\p{Me}]$/u;
/** Joining_Type T (transparent) is, in practice, Mn, Me and Cf. */
const RE_TRANSPARENT = /^[\p{Mn}\p{Me}\p{Cf}]$/u;
const RE_GREEK = /^\p{Script=Greek}$/u;
const RE_HEBREW = /^\p{Script=Hebrew}$/u;
const RE_KANA_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

/**
 * Canonical_Combining_Class == Virama (9), derived from the normalizer:
 * canonical reordering swaps adjacent marks whose classes are out of order.
 * U+3099 has ccc 8 and U+05B0 has ccc 10, so a mark X has ccc 9 exactly when
 * NFD reorders "X U+3099" (ccc(X) > 8) and "U+05B0 X" (0 < ccc(X) < 10).
 */
function isVirama(ch: string | undefined): boolean {
  // Viramas are marks without decompositions; anything else is not one (and
  // a decomposable character would fool the reordering test).
  if (ch === undefined || !RE_MARK.test(ch) || ch.normalize('NFD') !== ch) return false;
  const a = ch + '\u3099';
  const b = '\u05b0' + ch;
  return a.normalize('NFD') !== a && b.normalize('NFD') !== b;
}

/** Approximate Joining_Type in {L, D} / {R, D}: a letter of a joining script. */
function isJoiningLetter(ch: string | undefined): boolean {
  return ch !== undefined && RE_LETTER.test(ch) && RE_JOINING_SCRIPT.test(ch);
}

// ---------------------------------------------------------------------------
// String classes

type StringClass = 'identifier' | 'freeform';

/**
 * Validate every code point of `s` against the string class (RFC 8264 §8
 * derived property algorithm) and evaluate CONTEXTJ / CONTEXTO rules
 * (RFC 5892 Appendix A). Throws PrecisError on the first failure.
 */
function validateClass(s: string, cls: StringClass): void {
  const chars = Array.from(s);
  const n = chars.length;
  for (let i = 0; i < n; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    // Fast accept for printable ASCII (ASCII7 is PVALID in both classes).
    if (cp >= 0x21 && cp <= 0x7e) continue;
    if (cp === 0x20 && cls === 'freeform') continue;

    const exc = EXCEPTIONS.get(cp);
    if (exc !== undefined) {
      if (exc === PVALID) continue;
      if (exc === DISALLOWED) throw disallowed(cp, 'exception list');
      checkContextO(chars, i, cp);
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) throw disallowed(cp, 'surrogate');
    if (RE_UNASSIGNED.test(ch)) {
      if (RE_IGNORABLE.test(ch)) throw disallowed(cp, 'noncharacter');
      throw new PrecisError('unassigned', `unassigned code point ${hex(cp)}`, cp);
    }
    if (cp === 0x200c || cp === 0x200d) {
      checkContextJ(chars, i, cp);
      continue;
    }
    if (isOldHangulJamo(cp)) throw disallowed(cp, 'old Hangul jamo');
    if (RE_IGNORABLE.test(ch)) throw disallowed(cp, 'default ignorable');
    if (RE_CONTROL.test(ch)) throw disallowed(cp, 'control character');
    if (hasCompat(ch)) {
      if (cls === 'freeform') continue;
      throw disallowed(cp, 'compatibility equivalent');
    }
    if (RE_LETTER_DIGITS.test(ch)) continue;
    if (RE_OTHER_LETTER_DIGITS.test(ch)) {
      if (cls === 'freeform') continue;
      throw disallowed(cp, 'not a letter or digit');
    }
    if (RE_SPACES.test(ch)) {
      if (cls === 'freeform') continue;
      throw disallowed(cp, 'space');
    }
    if (RE_SYMBOLS.test(ch)) {
      if (cls === 'freeform') continue;
      throw disallowed(cp, 'symbol');
    }
    if (RE_PUNCTUATION.test(ch)) {
      if (cls === 'freeform') continue;
      throw disallowed(cp, 'punctuation');
    }
    throw disallowed(cp, 'not allowed in any string class');
  }
}

function contextFail(cp: number): PrecisError {
  return new PrecisError('context', `contextual rule failed for ${hex(cp)}`, cp);
}

/** CONTEXTJ rules for ZERO WIDTH NON-JOINER / JOINER (RFC 5892 A.1, A.2). */
function checkContextJ(chars: readonly string[], i: number, cp: number): void {
  if (isVirama(chars[i - 1])) return;
  if (cp === 0x200c) {
    // (Joining_Type:{L,D})(Joining_Type:T)* ZWNJ (Joining_Type:T)*(Joining_Type:{R,D})
    // Joining_Type is approximated: see isJoiningLetter / RE_TRANSPARENT.
    let j = i - 1;
    while (j >= 0 && RE_TRANSPARENT.test(chars[j]!) && chars[j] !== '\u200c') j--;
    let k = i + 1;
    while (k < chars.length && RE_TRANSPARENT.test(chars[k]!) && chars[k] !== '\u200c') k++;
    if (isJoiningLetter(chars[j]) && isJoiningLetter(chars[k])) return;
  }
  throw contextFail(cp);
}

/** CONTEXTO rules (RFC 5892 A.3 - A.9). */
function checkContextO(chars: readonly string[], i: number, cp: number): void {
  const before = chars[i - 1];
  const after = chars[i + 1];
  switch (cp) {
    case 0x00b7: // MIDDLE DOT: between two 'l'
      if (before === 'l' && after === 'l') return;
      break;
    case 0x0375: // GREEK LOWER NUMERAL SIGN: followed by Greek
      if (after !== undefined && RE_GREEK.test(after)) return;
      break;
    case 0x05f3: // HEBREW PUNCTUATION GERESH / GERSHAYIM: preceded by Hebrew
    case 0x05f4:
      if (before !== undefined && RE_HEBREW.test(before)) return;
      break;
    case 0x30fb: // KATAKANA MIDDLE DOT: string has Hiragana, Katakana or Han
      if (chars.some((c) => c !== '\u30fb' && RE_KANA_HAN.test(c))) return;
      break;
    default:
      if (cp >= 0x0660 && cp <= 0x0669) {
        // ARABIC-INDIC DIGITS: no EXTENDED ARABIC-INDIC DIGITS in the string
        if (!chars.some((c) => c >= '\u06f0' && c <= '\u06f9')) return;
      } else if (cp >= 0x06f0 && cp <= 0x06f9) {
        if (!chars.some((c) => c >= '\u0660' && c <= '\u0669')) return;
      }
  }
  throw contextFail(cp);
}

// ---------------------------------------------------------------------------
// Bidi Rule (RFC 5893 §2)

/*
 * ECMAScript has no Bidi_Class property, so it is derived here. Exactness
 * matters only for code points that can reach the Bidi Rule, i.e. those
 * valid in IdentifierClass: printable ASCII, letters, digits and marks, and
 * the exception list. Those are classified exactly enough: ASCII per the
 * Unicode data, marks as NSM, digits by block, letters by script.
 */
type Bidi = 'L' | 'R' | 'AN' | 'EN' | 'ES' | 'CS' | 'ET' | 'ON' | 'BN' | 'NSM' | 'WS';

const RE_BIDI_EN = /^[0-9\u00b2\u00b3\u00b9\u06f0-\u06f9\u2070\u2074-\u2079\u2080-\u2089\u2488-\u249b\uff10-\uff19\u{1d7ce}-\u{1d7ff}\u{1f100}-\u{1f10a}\u{1fbf0}-\u{1fbf9}]$/u;
const RE_BIDI_AN = /^[\u0600-\u0605\u0660-\u0669\u066b\u066c\u06dd\u0890\u0891\u08e2\u{10d30}-\u{10d39}\u{10e60}-\u{10e7e}]$/u;
const RE_BIDI_ES = /^[+\-\u207a\u207b\u208a\u208b\u2212\ufb29\ufe62\ufe63\uff0b\uff0d]$/u;
const RE_BIDI_CS = /^[,./:\u00a0\u060c\u202f\u2044\ufe50\ufe52\ufe55\uff0c\uff0e\uff0f\uff1a]$/u;
const RE_BIDI_ET =
  /^[#$%\u00a2-\u00a5\u00b0\u00b1\u058f\u0609\u060a\u066a\u09f2\u09f3\u09fb\u0af1\u0bf9\u0e3f\u17db\u2030-\u2034\u20a0-\u20cf\u212e\u2213\ua838\ua839\ufe5f\ufe69\ufe6a\uff03-\uff05\uffe0\uffe1\uffe5\uffe6]$/u;
const RE_BIDI_WS = /^[\t-\r\x1c-\x1f\x85\p{Zs}\p{Zl}\p{Zp}]$/u;
const RE_BIDI_BN = /^[\p{Cc}\p{Default_Ignorable_Code_Point}]$/u;
const RE_PUNCT_OR_SYMBOL = /^[\p{P}\p{S}]$/u;
/** Punctuation/symbols inside RTL-script blocks that are neutral (ON). */
const RE_RTL_NEUTRAL = /^[\u0606\u0607\u060e\u060f\u06de\u06e9\ufd3e\ufd3f]$/u;

function bidiClass(ch: string): Bidi {
  if (RE_BIDI_EN.test(ch)) return 'EN';
  if (RE_BIDI_AN.test(ch)) return 'AN';
  if (RE_NSM.test(ch)) return 'NSM';
  if (RE_BIDI_ES.test(ch)) return 'ES';
  if (RE_BIDI_CS.test(ch)) return 'CS';
  if (RE_BIDI_ET.test(ch)) return 'ET';
  if (RE_BIDI_WS.test(ch)) return 'WS';
  if (RE_BIDI_BN.test(ch)) return 'BN';
  if (RE_RTL_SCRIPT.test(ch)) return RE_RTL_NEUTRAL.test(ch) ? 'ON' : 'R';
  if (RE_PUNCT_OR_SYMBOL.test(ch)) return 'ON';
  return 'L';
}

/** True when the string contains a right-to-left code point (R, AL or AN). */
function hasRtl(chars: readonly string[]): boolean {
  for (const c of chars) {
    if (c.charCodeAt(0) < 0x0590) continue; // nothing RTL below the Hebrew block
    const b = bidiClass(c);
    if (b === 'R' || b === 'AN') return true;
  }
  return false;
}

function bidiFail(detail: string): PrecisError {
  return new PrecisError('bidi', `Bidi Rule violated: ${detail}`);
}

/**
 * Apply the Bidi Rule of RFC 5893 §2. Strings without right-to-left
 * characters are exempt unless `force` is set (labels of a Bidi domain name).
 */
function checkBidi(s: string, force = false): void {
  const chars = Array.from(s);
  if (!force && !hasRtl(chars)) return;
  const classes = chars.map(bidiClass);
  const first = classes[0]!;
  // Rule 1
  if (first !== 'L' && first !== 'R') throw bidiFail('first character must be L, R or AL');
  // Last character that is not NSM (rules 3 and 6).
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last]!;
  if (first === 'R') {
    let hasEn = false;
    let hasAn = false;
    for (const c of classes) {
      // Rule 2
      if (c === 'L' || c === 'WS') throw bidiFail('character not allowed in RTL string');
      if (c === 'EN') hasEn = true;
      if (c === 'AN') hasAn = true;
    }
    // Rule 3
    if (end !== 'R' && end !== 'EN' && end !== 'AN') {
      throw bidiFail('RTL string must end with R, AL, EN or AN');
    }
    // Rule 4
    if (hasEn && hasAn) throw bidiFail('RTL string mixes EN and AN digits');
  } else {
    for (const c of classes) {
      // Rule 5
      if (c === 'R' || c === 'AN' || c === 'WS') {
        throw bidiFail('character not allowed in LTR string');
      }
    }
    // Rule 6
    if (end !== 'L' && end !== 'EN') throw bidiFail('LTR string must end with L or EN');
  }
}

// ---------------------------------------------------------------------------
// Profiles

/** Fullwidth and halfwidth code points (those with <wide>/<narrow> mappings). */
const RE_WIDTH = /[\u3000\uff01-\uffee]/;
const RE_WIDTH_G = /[\u3000\uff01-\uffee]/g;

function widthMap(s: string): string {
  if (!RE_WIDTH.test(s)) return s;
  return s.replace(RE_WIDTH_G, (c) => c.normalize('NFKC'));
}

function usernameCaseMappedRules(s: string): string {
  return widthMap(s).toLowerCase().normalize('NFC');
}

/** Non-ASCII space characters (Zs other than U+0020). */
const RE_NON_ASCII_SPACE = /(?!\x20)\p{Zs}/gu;

function opaqueStringRules(s: string): string {
  return s.replace(RE_NON_ASCII_SPACE, ' ').normalize('NFC');
}

/**
 * Apply the mapping rules until the output is stable (idempotence, RFC 8264
 * §7); give up after a few rounds.
 */
function applyStable(s: string, rules: (x: string) => string): string {
  let out = rules(s);
  for (let i = 0; i < 3; i++) {
    const again = rules(out);
    if (again === out) return out;
    out = again;
  }
  throw new PrecisError('unstable', 'string does not reach a stable form');
}

/**
 * RFC 8265 §3.3 UsernameCaseMapped profile: width mapping, lower-casing,
 * NFC, IdentifierClass validation, Bidi Rule, non-empty.
 */
export function prepareUsernameCaseMapped(input: string): string {
  if (input.length === 0) throw new PrecisError('empty', 'string is empty');
  // Fast path: printable ASCII needs only lower-casing; it is all PVALID
  // and contains nothing right-to-left.
  if (PRINTABLE_ASCII.test(input)) {
    return HAS_UPPER_ASCII.test(input) ? input.toLowerCase() : input;
  }
  const out = applyStable(input, usernameCaseMappedRules);
  validateClass(out, 'identifier');
  checkBidi(out);
  if (out.length === 0) throw new PrecisError('empty', 'string is empty after preparation');
  return out;
}

/**
 * RFC 8265 §4.2 OpaqueString profile: non-ASCII spaces to U+0020, NFC,
 * FreeformClass validation, non-empty.
 */
export function prepareOpaqueString(input: string): string {
  if (input.length === 0) throw new PrecisError('empty', 'string is empty');
  if (PRINTABLE_ASCII_SP.test(input)) return input;
  const out = applyStable(input, opaqueStringRules);
  validateClass(out, 'freeform');
  if (out.length === 0) throw new PrecisError('empty', 'string is empty after preparation');
  return out;
}

// ---------------------------------------------------------------------------
// Domain names

const MAX_DOMAIN_OCTETS = 1023;
const MAX_LABEL_OCTETS = 63;
const ASCII_HOST = /^[A-Za-z0-9.-]+$/;
/** Lower-case LDH labels of 1..63 octets, no trailing dot. */
const CANONICAL_HOST = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
/** A label that the WHATWG host parser would read as a number. */
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/i;
/** ASCII other than letters, digits, hyphen and full stop. */
const NON_LDH_ASCII = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
/** Label separators mapped to FULL STOP (RFC 5895 / UTS #46). */
const RE_DOTS = /[\u3002\uff0e\uff61]/g;

function domainError(message: string): PrecisError {
  return new PrecisError('domain', message);
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function lastLabel(s: string): string {
  return s.slice(s.lastIndexOf('.') + 1);
}

/** Check an ASCII (LDH / A-label) host name. */
function checkAsciiLabels(ascii: string): void {
  if (ascii.length === 0) throw domainError('domain is empty');
  let start = 0;
  for (;;) {
    const dot = ascii.indexOf('.', start);
    const label = dot === -1 ? ascii.slice(start) : ascii.slice(start, dot);
    if (label.length === 0) throw domainError('domain has an empty label');
    if (label.length > MAX_LABEL_OCTETS) throw domainError('domain label exceeds 63 octets');
    if (!LDH_LABEL.test(label)) throw domainError(`invalid domain label "${label}"`);
    if (dot === -1) break;
    start = dot + 1;
  }
  if (NUMERIC_LABEL.test(lastLabel(ascii))) {
    throw domainError('domain has a numeric top-level label');
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * IDNA2008 (RFC 5891/5892) code point and Bidi checks on the U-labels, which
 * the UTS #46 processing behind domainToASCII is more lenient about (it
 * accepts symbols, for instance). IDNA2008 PVALID is, for our purposes, the
 * PRECIS IdentifierClass restricted to LDH in ASCII (checked on the A-label
 * form already); the contextual rules are shared.
 */
function checkULabels(unicode: string): void {
  if (!NON_ASCII.test(unicode)) return;
  const labels = unicode.split('.');
  for (const label of labels) {
    if (!NON_ASCII.test(label)) continue;
    try {
      validateClass(label, 'identifier');
    } catch (e) {
      throw domainError(`invalid domain label "${label}": ${(e as Error).message}`);
    }
  }
  // RFC 5893: in a domain name containing RTL characters, every label must
  // satisfy the Bidi Rule.
  if (hasRtl(Array.from(unicode))) {
    for (const label of labels) {
      try {
        checkBidi(label, true);
      } catch (e) {
        throw domainError(`invalid domain label "${label}": ${(e as Error).message}`);
      }
    }
  }
}

function prepareIpLiteral(input: string): string {
  if (!input.endsWith(']')) throw domainError('unterminated IPv6 literal');
  const inner = input.slice(1, -1);
  if (!IPV6_CHARS.test(inner) || !inner.includes(':')) {
    throw domainError('invalid IPv6 literal');
  }
  let host: string;
  try {
    host = new URL(`http://[${inner}]/`).hostname;
  } catch {
    throw domainError('invalid IPv6 literal');
  }
  return host;
}

/**
 * Prepare an XMPP domainpart (RFC 7622 §3.2): IPv4 literal, bracketed IPv6
 * literal, or an (internationalized) domain name. Returns the canonical form:
 * lower-case, no trailing dot, U-labels rather than A-labels.
 */
export function prepareDomain(input: string): string {
  if (input.length === 0) throw domainError('domain is empty');
  if (input.length > MAX_DOMAIN_OCTETS * 4) throw domainError('domain is too long');
  if (input.charCodeAt(0) === 0x5b /* [ */) return prepareIpLiteral(input);
  // Fast path: plain ASCII host names with no A-labels (the common case).
  if (ASCII_HOST.test(input)) {
    const out = prepareAsciiDomain(input);
    if (out !== undefined) return out;
  }
  return prepareIdnDomain(input);
}

/** ASCII-only domain; undefined when it holds A-labels (needs the IDN path). */
function prepareAsciiDomain(input: string): string | undefined {
  let s = HAS_UPPER_ASCII.test(input) ? input.toLowerCase() : input;
  if (s.charCodeAt(s.length - 1) === 0x2e /* . */) s = s.slice(0, -1);
  if (s.length > MAX_DOMAIN_OCTETS) throw domainError('domain exceeds 1023 octets');
  if (s.includes('xn--')) return undefined;
  if (CANONICAL_HOST.test(s) && !isDigit(s.charCodeAt(s.lastIndexOf('.') + 1))) return s;
  if (DOTTED_QUAD.test(s)) return s;
  checkAsciiLabels(s); // throws with a precise reason
  return s;
}

function prepareIdnDomain(input: string): string {
  const s = input.toLowerCase().normalize('NFC');
  // Numeric names are IPv4 literals or invalid; decide before the WHATWG
  // host parser reinterprets forms such as "1.2.3" or "0x7f.1".
  let plain = s.normalize('NFKC').replace(RE_DOTS, '.');
  if (plain.endsWith('.')) plain = plain.slice(0, -1);
  // domainToASCII parses its argument as a URL host, so URL delimiters
  // ("/", "?", "#", "%", ...) must not reach it; non-LDH ASCII (also as the
  // compatibility form of another character) is invalid in a domain anyway.
  const bad = NON_LDH_ASCII.exec(plain);
  if (bad !== null) {
    throw domainError(`invalid character ${hex(bad[0].charCodeAt(0))} in domain`);
  }
  if (NUMERIC_LABEL.test(lastLabel(plain))) {
    if (DOTTED_QUAD.test(plain)) return plain;
    throw domainError('invalid IPv4 address or numeric top-level label');
  }

  let ascii = domainToASCII(s);
  if (ascii === '') throw domainError('invalid internationalized domain name');
  if (ascii.endsWith('.')) ascii = ascii.slice(0, -1);
  checkAsciiLabels(ascii);
  const unicode = domainToUnicode(ascii).toLowerCase().normalize('NFC');
  // Reject A-labels that do not decode to a valid U-label (round trip).
  if (unicode === '' || domainToASCII(unicode) !== ascii) {
    throw domainError('invalid A-label in domain');
  }
  checkULabels(unicode);
  if (utf8Length(unicode) > MAX_DOMAIN_OCTETS) throw domainError('domain exceeds 1023 octets');
  return unicode;
}

/** prepareDomain, or undefined when `input` is not a valid domain. */
export function tryPrepareDomain(input: string): string | undefined {
  try {
    return prepareDomain(input);
  } catch (err) {
    if (err instanceof PrecisError) return undefined;
    throw err;
  }
}
