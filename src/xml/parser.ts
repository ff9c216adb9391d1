// The streaming XML parser of the server: RFC 6120 §11 restricted XML in, ltx Elements out.
//
// Written from the XML 1.0 (fifth edition) grammar and RFC 6120. One parser per direction of
// a connection; `reset()` on every stream restart (STARTTLS, SASL success).
//
// How it works
// - Bytes are decoded with a fatal, streaming TextDecoder, so characters split across chunks
//   are reassembled and invalid UTF-8 is an error.
// - The decoded text is scanned token by token with charCodeAt, indexOf and sticky regexes
//   (plain attribute values and text runs are matched in one step; anything with a reference,
//   a control character, CR or `]` takes the careful path). Text and CDATA content are consumed
//   as they arrive (only the few characters that could start a reference, a CRLF or a `]]>` are
//   held back). A start or end tag is parsed once it is complete; while it is incomplete its
//   pieces are kept in a list and each new chunk is only run through a resumable scan of the tag
//   grammar (scanTag), so a huge tag dripping in byte by byte costs linear time, and an error in
//   it is reported as soon as it arrives, exactly as with the input in one piece.
// - Sizes are counted in UTF-8 bytes, including the input still held, so an oversized stanza
//   (or stream header) is refused while it is still arriving.
// - Reported errors do not depend on how the input was cut into chunks, with one exception:
//   invalid UTF-8 is detected when its chunk is decoded, before the stanzas earlier in that
//   chunk are delivered.
// - Strings in the elements (attribute values, text) are slices of the decoded input, as with
//   ltx: a stanza kept for long may keep its input chunk (at most a socket read) in memory.
import { TextDecoder } from 'node:util';
import { Element } from '@xmpp/xml';

export type XmlErrorCondition = 'not-well-formed' | 'bad-namespace-prefix' | 'restricted-xml' | 'policy-violation' | 'invalid-xml';

/** A fatal stream-level XML error; `condition` is the RFC 6120 stream error condition. */
export class XmlStreamError extends Error {
  constructor(
    readonly condition: XmlErrorCondition,
    message: string,
  ) {
    super(message);
    this.name = 'XmlStreamError';
  }
}

export interface XmlLimits {
  /** Largest top-level element (stanza), in UTF-8 bytes of its serialised input. */
  maxStanzaBytes: number;
  /** Deepest element nesting below the stream root (a stanza is at depth 1). */
  maxDepth: number;
  /** Most attributes (namespace declarations included) on one element. */
  maxAttributes: number;
}

export interface XmlStreamHandler {
  /** The stream root's open tag (an element without children), attributes as written. */
  streamStart(header: Element): void;
  /** Each complete top-level child of the stream root; its `parent` is not set. */
  stanza(el: Element): void;
  /** The stream root's end tag. */
  streamEnd(): void;
  /** The first error only; the parser ignores further input until `reset()`. */
  error(err: XmlStreamError): void;
}

/** Bytes allowed before the stream header is complete (XML declaration and whitespace included). */
export const MAX_STREAM_HEADER_BYTES = 2048;

/** Longest entity or character reference accepted, from `&` to `;` inclusive. */
const MAX_REF_LENGTH = 32;

const enum State {
  Prolog,
  Stream,
  Ended,
  Failed,
}

/** Where the scan of an incomplete tag stands (see scanTag). */
const enum Scan {
  NameStart,
  Name,
  Spaced,
  AttrName,
  AfterAttrName,
  AfterEq,
  Value,
  AfterValue,
  Slash,
  EndNameStart,
  EndName,
  EndSpace,
}

// Return values of the token methods (a non-negative value is the next position).
const HELD = -1; // rest of the input held for the next write
const STOP = -2; // error reported (or the parser was reset from a callback)

const TAB = 9;
const LF = 10;
const CR = 13;
const SP = 32;
const BANG = 33;
const DQUOTE = 34;
const HASH = 35;
const SQUOTE = 39;
const SLASH = 47;
const COLON = 58;
const LT = 60;
const EQ = 61;
const GT = 62;
const QMARK = 63;
const RBRACKET = 93;

// ASCII name characters: bit 1 = NameStartChar, bit 2 = NameChar.
const NAME_TABLE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f /* _ */ || c === COLON;
  const other = (c >= 0x30 && c <= 0x39) || c === 0x2d /* - */ || c === 0x2e; /* . */
  NAME_TABLE[c] = start ? 3 : other ? 2 : 0;
}

function isNameStartCp(cp: number): boolean {
  if (cp < 128) return (NAME_TABLE[cp]! & 1) !== 0;
  return (
    (cp >= 0xc0 && cp <= 0xd6) ||
    (cp >= 0xd8 && cp <= 0xf6) ||
    (cp >= 0xf8 && cp <= 0x2ff) ||
    (cp >= 0x370 && cp <= 0x37d) ||
    (cp >= 0x37f && cp <= 0x1fff) ||
    (cp >= 0x200c && cp <= 0x200d) ||
    (cp >= 0x2070 && cp <= 0x218f) ||
    (cp >= 0x2c00 && cp <= 0x2fef) ||
    (cp >= 0x3001 && cp <= 0xd7ff) ||
    (cp >= 0xf900 && cp <= 0xfdcf) ||
    (cp >= 0xfdf0 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0xeffff)
  );
}

function isNameCharCp(cp: number): boolean {
  if (cp < 128) return (NAME_TABLE[cp]! & 2) !== 0;
  return isNameStartCp(cp) || cp === 0xb7 || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x203f && cp <= 0x2040);
}

/** Whether the name found by the last scanName() call has a colon. */
let nameHasColon = false;

/**
 * Scans an XML Name starting at `i`. Returns the index of the first character after it
 * (`len` if the input ends inside the name), or -1 if `s[i]` cannot start a name.
 */
function scanName(s: string, i: number, len: number): number {
  let c = s.charCodeAt(i);
  nameHasColon = c === COLON;
  if (c < 128) {
    if ((NAME_TABLE[c]! & 1) === 0) return -1;
    i++;
  } else {
    const cp = s.codePointAt(i)!;
    if (!isNameStartCp(cp)) return -1;
    i += cp > 0xffff ? 2 : 1;
  }
  while (i < len) {
    c = s.charCodeAt(i);
    if (c < 128) {
      if ((NAME_TABLE[c]! & 2) === 0) return i;
      if (c === COLON) nameHasColon = true;
      i++;
    } else {
      const cp = s.codePointAt(i)!;
      if (!isNameCharCp(cp)) return i;
      i += cp > 0xffff ? 2 : 1;
    }
  }
  return i;
}

// Element and attribute names repeat endlessly (message, body, to, from, id, type, xmlns...):
// a small direct-mapped cache returns one shared, internalised string per name instead of a
// fresh slice each time. It makes attribute stores cheaper and the stanzas smaller, and (being
// copies) cached names never keep a whole input chunk alive.
const NAME_CACHE_SIZE = 1024;
const NAME_CACHE_MAX_LENGTH = 40;
const nameCache: (string | undefined)[] = new Array<string | undefined>(NAME_CACHE_SIZE).fill(undefined);

function internalize(s: string): string {
  return Object.keys({ [s]: 0 })[0]!;
}

function nameAt(buf: string, start: number, end: number): string {
  const n = end - start;
  if (n > NAME_CACHE_MAX_LENGTH) return buf.slice(start, end);
  const h = (n * 31 + buf.charCodeAt(start) * 7 + buf.charCodeAt(end - 1) * 131 + buf.charCodeAt(start + (n >> 1)) * 17) & (NAME_CACHE_SIZE - 1);
  const cached = nameCache[h];
  if (cached !== undefined && cached.length === n && buf.startsWith(cached, start)) return cached;
  const name = internalize(buf.slice(start, end));
  nameCache[h] = name;
  return name;
}

function isName(s: string): boolean {
  return s.length > 0 && scanName(s, 0, s.length) === s.length;
}

/** Namespaces in XML: at most one colon, with a non-empty NCName on both sides. */
function isQName(name: string): boolean {
  const colon = name.indexOf(':');
  if (colon < 0) return true;
  if (colon === 0 || colon === name.length - 1 || name.indexOf(':', colon + 1) >= 0) return false;
  return isNameStartCp(name.codePointAt(colon + 1)!);
}

/** XML 1.0 Char production. */
function isXmlChar(cp: number): boolean {
  return cp === TAB || cp === LF || cp === CR || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

function isSpace(c: number): boolean {
  return c === SP || c === LF || c === CR || c === TAB;
}

// Character data needing more than a slice: illegal characters, references, CR, `]]>`.
const TEXT_SPECIAL = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF&\r\]]/;
// A run of character data without anything to check or replace (sticky).
const PLAIN_TEXT = /[^<&\r\]\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]*/y;
// CDATA content needing more than a slice: illegal characters, CR.
const CDATA_SPECIAL = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF\r]/;
// Attribute values without anything to check or replace, with their closing quote (sticky).
const PLAIN_DQ_VALUE = /[^"&<\x00-\x1F\uFFFE\uFFFF]*"/y;
const PLAIN_SQ_VALUE = /[^'&<\x00-\x1F\uFFFE\uFFFF]*'/y;
const ILLEGAL_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const NEWLINES = /\r\n?/g;
const ATTR_WHITESPACE = /\r\n|[\t\n\r]/g;
const XML_DECL =
  /^[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*$/;

/** The value of a character reference body (`#123` or `#x1F`), or -1 if malformed. */
function charRefValue(ref: string): number {
  const len = ref.length;
  let value = 0;
  if (len > 2 && ref.charCodeAt(1) === 0x78 /* x */) {
    for (let i = 2; i < len; i++) {
      const c = ref.charCodeAt(i);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else return -1;
      value = value * 16 + d;
      if (value > 0x10ffff) return -1;
    }
    return value;
  }
  if (len < 2) return -1;
  for (let i = 1; i < len; i++) {
    const c = ref.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
    if (value > 0x10ffff) return -1;
  }
  return value;
}

type Attrs = Record<string, string>;

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** A namespace prefix declared (`xmlns:prefix`) on an open element at `depth`. */
interface Binding {
  prefix: string;
  uri: string;
  depth: number;
}

export class XmlStreamParser {
  private decoder: TextDecoder | undefined;
  private state: State = State.Prolog;
  /** Bumped by reset(): a token loop running when a callback resets the parser stops. */
  private generation = 0;
  /** An XML declaration (or anything else) was seen: no declaration allowed any more. */
  private declSeen = false;
  private rootName = '';

  /** Open elements below the stream root; stack[0] is the stanza being built. */
  private stack: Element[] = [];
  /** Scratch list of the attribute names of the tag being parsed. */
  private readonly attrNames: string[] = [];
  /** Prefixes declared on the open elements (stream header included), innermost last. */
  private bindings: Binding[] = [];
  private depth = 0;
  /** Character data of the innermost open element not yet appended as a child. */
  private text = '';
  private inCdata = false;

  /** Unprocessed short input (a partial reference, `<!`, `]]`...) to prepend to the next chunk. */
  private tail = '';
  /** Pieces of an incomplete start or end tag, joined once its `>` arrives. */
  private pending: string[] | null = null;
  private scanState: Scan = Scan.NameStart;
  private scanQuote = 0;
  private pendingBytes = 0;

  /** Size accounting of the stanza (or stream header) being received. */
  private counting = true;
  private countLimit = MAX_STREAM_HEADER_BYTES;
  /** Bytes of the counted region already processed, before `countMark` of the current buffer. */
  private countBytes = 0;
  private countMark = 0;

  constructor(
    private readonly limits: XmlLimits,
    private readonly handler: XmlStreamHandler,
  ) {
    this.reset();
  }

  /** Unconsumed input held between writes, in UTF-8 bytes. */
  get bytesBuffered(): number {
    return (this.tail === '' ? 0 : Buffer.byteLength(this.tail)) + this.pendingBytes;
  }

  /**
   * Whether the input so far ends between top-level elements (no element, tag, reference or
   * markup begun and unfinished): the framed transports (WebSocket, BOSH) check that each
   * message held whole elements.
   */
  get betweenElements(): boolean {
    return this.depth === 0 && this.pending === null && this.tail === '' && this.state !== State.Failed;
  }

  /**
   * Stream restart: forget everything (including input not processed yet, e.g. the rest of
   * the chunk being written when called from a handler callback) and expect a new header,
   * optionally preceded by an XML declaration.
   */
  reset(): void {
    this.generation++;
    // Kept across restarts (each TextDecoder holds a native ICU converter until collected):
    // a flush empties it; one holding part of a character (the flush throws) is replaced.
    try {
      this.decoder?.decode();
    } catch {
      this.decoder = undefined;
    }
    this.decoder ??= new TextDecoder('utf-8', { fatal: true });
    this.state = State.Prolog;
    this.declSeen = false;
    this.rootName = '';
    this.bindings = [];
    this.release();
    this.counting = true;
    this.countLimit = MAX_STREAM_HEADER_BYTES;
    this.countBytes = 0;
    this.countMark = 0;
  }

  /**
   * Feeds input. Never throws for bad input (errors go to `handler.error`); an exception thrown
   * by a handler callback propagates and leaves the parser stopped. Not re-entrant: do not call
   * write() from a handler callback.
   */
  write(chunk: Buffer | string): void {
    if (this.state === State.Failed) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let str: string;
    try {
      str = this.decoder!.decode(bytes, { stream: true });
    } catch {
      this.fail('not-well-formed', 'invalid UTF-8');
      return;
    }
    if (str.length === 0) return;
    try {
      if (this.pending !== null) {
        if (this.scanTag(str, 0) < 0) {
          this.pending.push(str);
          this.pendingBytes += Buffer.byteLength(str);
          this.checkHeld(this.pendingBytes);
          return;
        }
        this.pending.push(str);
        str = this.pending.join(''); // join, unlike +, makes a flat string: faster to scan
        this.pending = null;
        this.pendingBytes = 0;
      } else if (this.tail !== '') {
        str = [this.tail, str].join('');
        this.tail = '';
      }
      this.run(str);
    } catch (err) {
      this.state = State.Failed;
      this.release();
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Token loop

  private run(buf: string): void {
    const generation = this.generation;
    const len = buf.length;
    this.countMark = 0;
    let pos = 0;
    while (pos < len) {
      let next: number;
      if (this.inCdata) next = this.cdataContent(buf, pos, len);
      else if (this.depth > 0) {
        next = buf.charCodeAt(pos) === LT ? this.markup(buf, pos, len) : this.textContent(buf, pos, len);
      } else next = this.topLevel(buf, pos, len);
      if (next < 0 || this.generation !== generation) return;
      pos = next;
    }
    if (this.counting) {
      this.countBytes += this.byteSize(buf, this.countMark, len);
      this.checkHeld(0);
    }
  }

  /** Stream level: before the header, between stanzas, after the end of the stream. */
  private topLevel(buf: string, pos: number, len: number): number {
    let c = buf.charCodeAt(pos);
    while (isSpace(c)) {
      if (++pos === len) return pos;
      c = buf.charCodeAt(pos);
    }
    if (this.state === State.Ended) return this.fail('not-well-formed', 'data after the end of the stream');
    if (c !== LT) {
      return this.fail('not-well-formed', this.state === State.Prolog ? 'text before the stream header' : 'text at stream level');
    }
    if (pos + 1 >= len) return this.holdTail(buf, pos, len);
    const c2 = buf.charCodeAt(pos + 1);
    if (c2 === QMARK) {
      if (this.state === State.Prolog && !this.declSeen) {
        if (len - pos < 6) {
          return '<?xml'.startsWith(buf.slice(pos)) ? this.holdTail(buf, pos, len) : this.fail('restricted-xml', 'processing instruction');
        }
        if (buf.startsWith('<?xml', pos) && isSpace(buf.charCodeAt(pos + 5))) return this.xmlDecl(buf, pos, len);
      }
      return this.fail('restricted-xml', 'processing instruction');
    }
    if (c2 === BANG) return this.bang(buf, pos, len);
    if (c2 === SLASH) {
      if (this.state === State.Prolog) return this.fail('not-well-formed', 'end tag before the stream header');
      return this.endTag(buf, pos, len);
    }
    this.declSeen = true;
    if (this.state === State.Stream) {
      this.counting = true;
      this.countLimit = this.limits.maxStanzaBytes;
      this.countBytes = 0;
      this.countMark = pos;
    }
    return this.startTag(buf, pos, len);
  }

  /** `<` inside an element. */
  private markup(buf: string, pos: number, len: number): number {
    if (pos + 1 >= len) return this.holdTail(buf, pos, len);
    const c2 = buf.charCodeAt(pos + 1);
    if (c2 === SLASH) return this.endTag(buf, pos, len);
    if (c2 === BANG) return this.bang(buf, pos, len);
    if (c2 === QMARK) return this.fail('restricted-xml', 'processing instruction');
    return this.startTag(buf, pos, len);
  }

  /** `<!`: a CDATA section inside an element; comments and DTD markup are restricted. */
  private bang(buf: string, pos: number, len: number): number {
    if (pos + 2 >= len) return this.holdTail(buf, pos, len);
    const c3 = buf.charCodeAt(pos + 2);
    if (c3 === 0x2d /* - */) return this.fail('restricted-xml', 'comment');
    if (c3 !== 0x5b /* [ */) return this.fail('restricted-xml', 'document type declaration or markup declaration');
    if (this.depth === 0) return this.fail('not-well-formed', 'CDATA section at stream level');
    if (len - pos < 9) {
      return '<![CDATA['.startsWith(buf.slice(pos)) ? this.holdTail(buf, pos, len) : this.fail('not-well-formed', 'malformed CDATA section');
    }
    if (!buf.startsWith('<![CDATA[', pos)) return this.fail('not-well-formed', 'malformed CDATA section');
    this.inCdata = true;
    return pos + 9;
  }

  private xmlDecl(buf: string, pos: number, len: number): number {
    const end = buf.indexOf('?>', pos + 5);
    if (end < 0) return this.holdTail(buf, pos, len);
    const m = XML_DECL.exec(buf.slice(pos + 5, end));
    if (m === null) return this.fail('not-well-formed', 'malformed XML declaration');
    const encoding = m[1] ?? m[2];
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      return this.fail('not-well-formed', `unsupported encoding ${encoding}`);
    }
    this.declSeen = true;
    return end + 2;
  }

  private startTag(buf: string, pos: number, len: number): number {
    const isHeader = this.state === State.Prolog;
    const depth = isHeader ? 0 : this.depth + 1;
    if (depth > this.limits.maxDepth) return this.fail('policy-violation', 'elements nested too deeply');
    let i = pos + 1;
    const nameEnd = scanName(buf, i, len);
    if (nameEnd < 0) return this.fail('not-well-formed', 'invalid element name');
    if (nameEnd >= len) return this.holdPending(buf, pos, len, false);
    const name = nameAt(buf, i, nameEnd);
    if (nameHasColon && !isQName(name)) return this.fail('not-well-formed', `invalid element name ${name}`);
    // Any prefix on the element or an attribute (declarations included) needs a namespace check.
    let prefixed = nameHasColon;
    i = nameEnd;

    const attrs: Attrs = {};
    // The header is bounded by MAX_STREAM_HEADER_BYTES instead.
    const maxAttributes = isHeader ? Infinity : this.limits.maxAttributes;
    const stripXmlns = depth === 1;
    let count = 0;
    const seen = this.attrNames;
    let xmlnsSeen = false;
    let selfClosing = false;
    for (;;) {
      if (i >= len) return this.holdPending(buf, pos, len, false);
      let c = buf.charCodeAt(i);
      let spaced = false;
      while (isSpace(c)) {
        spaced = true;
        if (++i >= len) return this.holdPending(buf, pos, len, false);
        c = buf.charCodeAt(i);
      }
      if (c === GT) {
        i++;
        break;
      }
      if (c === SLASH) {
        if (i + 1 >= len) return this.holdPending(buf, pos, len, false);
        if (buf.charCodeAt(i + 1) !== GT) return this.fail('not-well-formed', `malformed start tag <${name}>`);
        i += 2;
        selfClosing = true;
        break;
      }
      if (!spaced) return this.fail('not-well-formed', `malformed start tag <${name}>`);

      const attrEnd = scanName(buf, i, len);
      if (attrEnd < 0) return this.fail('not-well-formed', `malformed start tag <${name}>`);
      if (attrEnd >= len) return this.holdPending(buf, pos, len, false);
      const attr = nameAt(buf, i, attrEnd);
      const attrHasColon = nameHasColon;
      i = attrEnd;
      c = buf.charCodeAt(i);
      while (isSpace(c)) {
        if (++i >= len) return this.holdPending(buf, pos, len, false);
        c = buf.charCodeAt(i);
      }
      if (c !== EQ) return this.fail('not-well-formed', `attribute ${attr} without a value`);
      if (++i >= len) return this.holdPending(buf, pos, len, false);
      c = buf.charCodeAt(i);
      while (isSpace(c)) {
        if (++i >= len) return this.holdPending(buf, pos, len, false);
        c = buf.charCodeAt(i);
      }
      if (c !== DQUOTE && c !== SQUOTE) return this.fail('not-well-formed', `unquoted value of attribute ${attr}`);
      // Fast path: a value of plain characters up to the closing quote, in one regex step.
      const plain = c === DQUOTE ? PLAIN_DQ_VALUE : PLAIN_SQ_VALUE;
      plain.lastIndex = i + 1;
      let valueEnd: number;
      let special = false;
      if (plain.test(buf)) {
        valueEnd = plain.lastIndex - 1;
      } else {
        // Characters needing a closer look (controls, `&`, `<`), or the value is incomplete.
        valueEnd = buf.indexOf(c === DQUOTE ? '"' : "'", i + 1);
        if (valueEnd < 0) {
          if (buf.indexOf('<', i + 1) >= 0) return this.fail('not-well-formed', "'<' in attribute value");
          return this.holdPending(buf, pos, len, false);
        }
        special = true;
      }
      let value = buf.slice(i + 1, valueEnd);
      i = valueEnd + 1;

      if (++count > maxAttributes) return this.fail('policy-violation', `too many attributes on <${name}>`);
      if (special) {
        const cooked = this.attrValue(value);
        if (cooked === null) return STOP;
        value = cooked;
      }
      // Duplicates: a short linear search (names are mostly shared strings), else a lookup.
      let duplicate = false;
      if (count <= 16) {
        for (let k = 0; k < count - 1; k++) {
          if (seen[k] === attr) {
            duplicate = true;
            break;
          }
        }
        seen[count - 1] = attr;
      } else duplicate = attr === 'xmlns' ? xmlnsSeen : attrs[attr] !== undefined && Object.hasOwn(attrs, attr);
      if (duplicate) return this.fail('not-well-formed', `duplicate attribute ${attr} on <${name}>`);
      if (attr === 'xmlns') {
        xmlnsSeen = true;
        if (stripXmlns && (value === 'jabber:client' || value === 'jabber:server')) continue;
      } else {
        if (attrHasColon) {
          if (!isQName(attr)) return this.fail('not-well-formed', `invalid attribute name ${attr}`);
          prefixed = true;
        }
        if (attr === '__proto__') {
          Object.defineProperty(attrs, attr, { value, enumerable: true, writable: true, configurable: true });
          continue;
        }
      }
      attrs[attr] = value;
    }

    if (prefixed && !this.checkNamespaces(name, attrs, depth)) return STOP;
    const el = new Element(name);
    el.attrs = attrs;

    if (isHeader) {
      if (this.overLimit(buf, i, MAX_STREAM_HEADER_BYTES)) return this.fail('policy-violation', 'stream header too large');
      this.counting = false;
      this.state = State.Stream;
      this.rootName = name;
      const generation = this.generation;
      this.handler.streamStart(el);
      if (selfClosing && this.generation === generation && this.state === State.Stream) {
        this.state = State.Ended;
        this.handler.streamEnd();
      }
      return i;
    }

    if (depth === 1) {
      if (selfClosing) {
        this.unbind(depth);
        return this.stanzaDone(el, buf, i);
      }
    } else {
      const parent = this.stack[this.depth - 1]!;
      if (this.text !== '') {
        parent.children.push(this.text);
        this.text = '';
      }
      parent.children.push(el);
      el.parent = parent;
      if (selfClosing) {
        this.unbind(depth);
        return i;
      }
    }
    this.stack.push(el);
    this.depth = depth;
    return i;
  }

  private endTag(buf: string, pos: number, len: number): number {
    const start = pos + 2;
    if (start >= len) return this.holdPending(buf, pos, len, true);
    const nameEnd = scanName(buf, start, len);
    if (nameEnd < 0) return this.fail('not-well-formed', 'malformed end tag');
    if (nameEnd >= len) return this.holdPending(buf, pos, len, true);
    let i = nameEnd;
    let c = buf.charCodeAt(i);
    while (isSpace(c)) {
      if (++i >= len) return this.holdPending(buf, pos, len, true);
      c = buf.charCodeAt(i);
    }
    if (c !== GT) return this.fail('not-well-formed', 'malformed end tag');
    i++;

    const depth = this.depth;
    const expected = depth === 0 ? this.rootName : this.stack[depth - 1]!.name;
    if (nameEnd - start !== expected.length || !buf.startsWith(expected, start)) {
      return this.fail('not-well-formed', `</${buf.slice(start, nameEnd)}> does not close <${expected}>`);
    }
    if (depth === 0) {
      this.state = State.Ended;
      this.handler.streamEnd();
      return i;
    }
    const el = this.stack.pop()!;
    if (this.text !== '') {
      el.children.push(this.text);
      this.text = '';
    }
    this.depth = depth - 1;
    this.unbind(depth);
    if (depth === 1) return this.stanzaDone(el, buf, i);
    return i;
  }

  /**
   * Namespaces in XML 1.0 on a start tag with a prefix somewhere: declares its prefixes (an
   * empty `xmlns:p=''` is an XML 1.1 undeclaration, not allowed here), checks that every prefix
   * used is bound (else bad-namespace-prefix, RFC 6120 §4.9.3.2) and that no two attributes
   * have the same expanded name. False when it reported an error.
   */
  private checkNamespaces(name: string, attrs: Attrs, depth: number): boolean {
    const keys = Object.keys(attrs);
    for (const attr of keys) {
      if (!attr.startsWith('xmlns:')) continue;
      const prefix = attr.slice(6);
      const uri = attrs[attr]!;
      if (uri === '') return this.failNs('not-well-formed', `prefix ${prefix} undeclared (xmlns:${prefix}='') on <${name}>`);
      if (prefix === 'xmlns' || uri === XMLNS_NS) return this.failNs('not-well-formed', `the xmlns prefix and namespace are reserved (<${name}>)`);
      if ((prefix === 'xml') !== (uri === XML_NS)) return this.failNs('not-well-formed', `the xml prefix and namespace belong together (<${name}>)`);
      this.bindings.push({ prefix, uri, depth });
    }
    const colon = name.indexOf(':');
    if (colon >= 0) {
      const prefix = name.slice(0, colon);
      if (prefix === 'xmlns') return this.failNs('not-well-formed', `element <${name}> with the reserved xmlns prefix`);
      if (this.lookup(prefix) === undefined) return this.failNs('bad-namespace-prefix', `prefix ${prefix} of <${name}> is not bound`);
    }
    let expanded: Set<string> | undefined;
    for (const attr of keys) {
      const at = attr.indexOf(':');
      if (at < 0 || attr.startsWith('xmlns:')) continue;
      const prefix = attr.slice(0, at);
      const uri = this.lookup(prefix);
      if (uri === undefined) return this.failNs('bad-namespace-prefix', `prefix ${prefix} of attribute ${attr} on <${name}> is not bound`);
      const key = `${uri} ${attr.slice(at + 1)}`;
      expanded ??= new Set();
      if (expanded.has(key)) return this.failNs('not-well-formed', `two attributes named {${uri}}${attr.slice(at + 1)} on <${name}>`);
      expanded.add(key);
    }
    return true;
  }

  private lookup(prefix: string): string | undefined {
    if (prefix === 'xml') return XML_NS;
    for (let k = this.bindings.length - 1; k >= 0; k--) if (this.bindings[k]!.prefix === prefix) return this.bindings[k]!.uri;
    return undefined;
  }

  /** Forgets the prefixes declared on the element at `depth` that just closed. */
  private unbind(depth: number): void {
    const b = this.bindings;
    while (b.length !== 0 && b[b.length - 1]!.depth >= depth) b.pop();
  }

  private failNs(condition: XmlErrorCondition, message: string): false {
    this.fail(condition, message);
    return false;
  }

  private stanzaDone(el: Element, buf: string, end: number): number {
    this.counting = false;
    if (this.overLimit(buf, end, this.limits.maxStanzaBytes)) return this.fail('policy-violation', 'stanza too large');
    this.handler.stanza(el);
    return end;
  }

  /** Character data inside an element, up to the next `<` or as much as is safe to take. */
  private textContent(buf: string, pos: number, len: number): number {
    // Fast path: plain characters up to the next `<`, in one regex step.
    PLAIN_TEXT.lastIndex = pos;
    PLAIN_TEXT.test(buf);
    const plainEnd = PLAIN_TEXT.lastIndex;
    if (plainEnd < len && buf.charCodeAt(plainEnd) === LT) {
      this.text += buf.slice(pos, plainEnd);
      return plainEnd;
    }
    const lt = buf.indexOf('<', plainEnd);
    if (lt >= 0) return this.addText(buf, pos, lt) ? lt : STOP;
    let end = len;
    const amp = buf.lastIndexOf('&', len - 1);
    if (amp >= pos && len - amp < MAX_REF_LENGTH && buf.indexOf(';', amp) < 0) {
      end = amp; // a reference still arriving
    } else {
      const last = buf.charCodeAt(len - 1);
      if (last === CR)
        end--; // maybe the CR of a CRLF
      else if (last === RBRACKET) {
        end--; // maybe the start of `]]>`
        if (end > pos && buf.charCodeAt(end - 1) === RBRACKET) end--;
      }
    }
    if (end > pos && !this.addText(buf, pos, end)) return STOP;
    return this.holdTail(buf, end, len);
  }

  private addText(buf: string, start: number, end: number): boolean {
    let s = buf.slice(start, end);
    if (TEXT_SPECIAL.test(s)) {
      // Report the first problem in document order, whatever the chunking was.
      const illegal = s.search(ILLEGAL_CHAR);
      const cdataEnd = s.indexOf(']]>');
      const bad = illegal < 0 ? cdataEnd : cdataEnd < 0 ? illegal : Math.min(illegal, cdataEnd);
      if (bad >= 0) {
        const before = s.slice(0, bad);
        if (!before.includes('&') || this.unescape(before) !== null) {
          this.fail('not-well-formed', bad === illegal ? 'illegal character in text' : "']]>' in text");
        }
        return false;
      }
      if (s.includes('\r')) s = s.replace(NEWLINES, '\n');
      if (s.includes('&')) {
        const unescaped = this.unescape(s);
        if (unescaped === null) return false;
        s = unescaped;
      }
    }
    this.text += s;
    return true;
  }

  private cdataContent(buf: string, pos: number, len: number): number {
    const close = buf.indexOf(']]>', pos);
    if (close >= 0) {
      if (!this.addCdata(buf, pos, close)) return STOP;
      this.inCdata = false;
      return close + 3;
    }
    let end = len;
    const last = buf.charCodeAt(len - 1);
    if (last === CR) end--;
    else if (last === RBRACKET) {
      end--;
      if (end > pos && buf.charCodeAt(end - 1) === RBRACKET) end--;
    }
    if (end > pos && !this.addCdata(buf, pos, end)) return STOP;
    return this.holdTail(buf, end, len);
  }

  private addCdata(buf: string, start: number, end: number): boolean {
    let s = buf.slice(start, end);
    if (CDATA_SPECIAL.test(s)) {
      if (ILLEGAL_CHAR.test(s)) {
        this.fail('not-well-formed', 'illegal character in CDATA section');
        return false;
      }
      s = s.replace(NEWLINES, '\n');
    }
    this.text += s;
    return true;
  }

  /** Attribute-value normalisation (XML 1.0 §3.3.3) and checks; null after an error. */
  private attrValue(value: string): string | null {
    if (ILLEGAL_CHAR.test(value)) {
      this.fail('not-well-formed', 'illegal character in attribute value');
      return null;
    }
    if (value.includes('<')) {
      this.fail('not-well-formed', "'<' in attribute value");
      return null;
    }
    value = value.replace(ATTR_WHITESPACE, ' ');
    return value.includes('&') ? this.unescape(value) : value;
  }

  /** Replaces the predefined entities and character references; null after an error. */
  private unescape(s: string): string | null {
    let out = '';
    let from = 0;
    let amp = s.indexOf('&');
    while (amp >= 0) {
      const semi = s.indexOf(';', amp + 1);
      if (semi < 0 || semi - amp >= MAX_REF_LENGTH) {
        this.fail('not-well-formed', "'&' not starting a reference");
        return null;
      }
      const ref = s.slice(amp + 1, semi);
      let ch: string;
      if (ref.charCodeAt(0) === HASH) {
        const cp = charRefValue(ref);
        if (cp < 0 || !isXmlChar(cp)) {
          this.fail('not-well-formed', `${cp < 0 ? 'malformed character reference' : 'reference to an illegal character'} &${ref};`);
          return null;
        }
        ch = String.fromCodePoint(cp);
      } else {
        switch (ref) {
          case 'lt':
            ch = '<';
            break;
          case 'gt':
            ch = '>';
            break;
          case 'amp':
            ch = '&';
            break;
          case 'quot':
            ch = '"';
            break;
          case 'apos':
            ch = "'";
            break;
          default:
            if (isName(ref)) this.fail('restricted-xml', `entity reference &${ref};`);
            else this.fail('not-well-formed', "'&' not starting a reference");
            return null;
        }
      }
      out += s.slice(from, amp) + ch;
      from = semi + 1;
      amp = s.indexOf('&', from);
    }
    return from === 0 ? s : out + s.slice(from);
  }

  // ---------------------------------------------------------------------------------------
  // Holding input between writes, size accounting

  private byteSize(buf: string, start: number, end: number): number {
    return end <= start ? 0 : Buffer.byteLength(buf.slice(start, end));
  }

  /** Whether the counted region, ending at `end` of `buf`, is over `limit` bytes. */
  private overLimit(buf: string, end: number, limit: number): boolean {
    const chars = end - this.countMark;
    // A UTF-16 code unit is at most 3 UTF-8 bytes: most stanzas need no exact count.
    if (this.countBytes + chars * 3 <= limit) return false;
    return this.countBytes + this.byteSize(buf, this.countMark, end) > limit;
  }

  /** Keeps buf[pos..] (short) to prepend to the next chunk. */
  private holdTail(buf: string, pos: number, len: number): number {
    if (this.counting) this.countBytes += this.byteSize(buf, this.countMark, pos);
    if (pos < len) this.tail = buf.slice(pos);
    return this.checkHeld(this.byteSize(buf, pos, len));
  }

  /** Keeps the incomplete tag buf[pos..] until its end (or an error in it) arrives. */
  private holdPending(buf: string, pos: number, len: number, endTag: boolean): number {
    if (this.counting) this.countBytes += this.byteSize(buf, this.countMark, pos);
    this.scanState = endTag ? Scan.EndNameStart : Scan.NameStart;
    this.scanQuote = 0;
    this.scanTag(buf, pos + (endTag ? 2 : 1)); // the scan state at the end of what we have
    this.pending = [buf.slice(pos)];
    this.pendingBytes = this.byteSize(buf, pos, len);
    return this.checkHeld(this.pendingBytes);
  }

  /** Refuses a stanza (or header) that, with what is held, is already over its limit. */
  private checkHeld(held: number): number {
    if (this.counting) {
      if (this.countBytes + held > this.countLimit) {
        return this.fail('policy-violation', this.state === State.Prolog ? 'stream header too large' : 'stanza too large');
      }
    } else if (held > this.limits.maxStanzaBytes) {
      return this.fail('policy-violation', 'markup too large');
    }
    return HELD;
  }

  /**
   * Resumable scan of an incomplete tag, following the same grammar as startTag / endTag.
   * Returns the index just past the character that ends the tag (its `>`, or the first
   * character the tag parser will reject, so errors are reported as early as with whole
   * input), or -1 if `s` ends first; the state is kept across chunks. Linear in the input.
   */
  private scanTag(s: string, from: number): number {
    const len = s.length;
    let state = this.scanState;
    let lt = -2; // position of the next '<' (computed lazily), or len if none
    let i = from;
    while (i < len) {
      if (state === Scan.Value) {
        const close = s.indexOf(this.scanQuote === DQUOTE ? '"' : "'", i);
        if (lt < i) {
          lt = s.indexOf('<', i);
          if (lt < 0) lt = len;
        }
        if (lt < (close < 0 ? len : close)) return lt + 1;
        if (close < 0) {
          i = len;
          break;
        }
        state = Scan.AfterValue;
        i = close + 1;
        continue;
      }
      const c = s.charCodeAt(i);
      let cp = c;
      let width = 1;
      if (c >= 0xd800 && c <= 0xdbff) {
        cp = s.codePointAt(i)!;
        if (cp > 0xffff) width = 2;
      }
      switch (state) {
        case Scan.NameStart:
        case Scan.EndNameStart:
          if (!isNameStartCp(cp)) return i + 1;
          state = state === Scan.NameStart ? Scan.Name : Scan.EndName;
          break;
        case Scan.Name:
        case Scan.AfterValue:
          if (state === Scan.Name && isNameCharCp(cp)) break;
          if (isSpace(c)) state = Scan.Spaced;
          else if (c === SLASH) state = Scan.Slash;
          else return i + 1; // '>' or an error
          break;
        case Scan.Spaced:
          if (isSpace(c)) break;
          if (c === SLASH) state = Scan.Slash;
          else if (isNameStartCp(cp)) state = Scan.AttrName;
          else return i + 1;
          break;
        case Scan.AttrName:
          if (isNameCharCp(cp)) break;
          if (isSpace(c)) state = Scan.AfterAttrName;
          else if (c === EQ) state = Scan.AfterEq;
          else return i + 1;
          break;
        case Scan.AfterAttrName:
          if (isSpace(c)) break;
          if (c === EQ) state = Scan.AfterEq;
          else return i + 1;
          break;
        case Scan.AfterEq:
          if (isSpace(c)) break;
          if (c !== DQUOTE && c !== SQUOTE) return i + 1;
          this.scanQuote = c;
          state = Scan.Value;
          break;
        case Scan.EndName:
          if (isNameCharCp(cp)) break;
          if (isSpace(c)) state = Scan.EndSpace;
          else return i + 1;
          break;
        case Scan.EndSpace:
          if (!isSpace(c)) return i + 1;
          break;
        default: // Scan.Slash
          return i + 1;
      }
      i += width;
    }
    this.scanState = state;
    return -1;
  }

  private release(): void {
    this.tail = '';
    this.pending = null;
    this.pendingBytes = 0;
    this.stack = [];
    this.depth = 0;
    this.text = '';
    this.inCdata = false;
  }

  /** Reports the first error (later ones are ignored); returns STOP. */
  private fail(condition: XmlErrorCondition, message: string): typeof STOP {
    if (this.state !== State.Failed) {
      this.state = State.Failed;
      this.release();
      this.handler.error(new XmlStreamError(condition, message));
    }
    return STOP;
  }
}
