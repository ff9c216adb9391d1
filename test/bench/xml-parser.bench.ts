// Throughput of the stream parser against ltx (through @xmpp/xml) and sax (strict), when present.
//
//   npx tsx test/bench/xml-parser.bench.ts [megabytes]
//
// ~50 MB of realistic chat messages (a stream header, then `<message>` stanzas of ~300 bytes
// with a body, some entities and some non-ASCII text, a chat state, whitespace keepalives),
// fed in 64 KiB Buffer chunks, then one stanza per write; every parser builds ltx Elements.
// Best of 3 runs.
import { Element, Parser as LtxParser } from '@xmpp/xml';
import { XmlStreamParser } from '../../src/xml/parser.js';

const TARGET_MB = Number(process.argv[2] ?? 50);
const CHUNK = 64 * 1024;
const RUNS = 3;

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

const BODIES = [
  'Hey, are you coming to the meeting this afternoon? We moved it to room 4.',
  'I think the build is broken again &amp; nobody noticed, can you take a look when you have a minute?',
  'Sure, give me 10 minutes. Just finishing a review of the parser patch.',
  'if (a &lt; b &amp;&amp; c &gt; d) return &quot;ok&quot; &#8212; that is what I meant',
  'Ça marche, à tout à l\u2019heure ! \ud83d\ude00',
  'lol',
  'Did you see the release notes? The new version supports message reactions and it&apos;s much faster.',
  'Can you send me the link to the document again? I lost it somewhere in my tabs.',
  'Привет! Как дела? Увидимся завтра.',
  'Thanks! \ud83d\udc4d',
];

function buildInput(targetBytes: number): { data: Buffer; stanzas: number; perStanza: Buffer[] } {
  const parts: string[] = [HEADER];
  let size = HEADER.length;
  let stanzas = 0;
  while (size < targetBytes) {
    const n = stanzas;
    const body = BODIES[n % BODIES.length]!;
    const stanza =
      `<message to='juliet${n % 97}@capulet.example/balcony' from='romeo${n % 89}@montague.example/orchard-${n % 13}' ` +
      `id='msg-${n.toString(36)}-${(n * 7919) % 100000}' type='chat' xml:lang='en'><body>${body}</body>` +
      "<active xmlns='http://jabber.org/protocol/chatstates'/>" +
      (n % 4 === 0 ? "<request xmlns='urn:xmpp:receipts'/>" : '') +
      '</message>' +
      (n % 50 === 0 ? '\n' : '');
    parts.push(stanza);
    size += Buffer.byteLength(stanza);
    stanzas++;
  }
  return { data: Buffer.from(parts.join('')), stanzas, perStanza: parts.map((p) => Buffer.from(p)) };
}

function chunks(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += CHUNK) out.push(data.subarray(i, i + CHUNK));
  return out;
}

type Runner = (pieces: Buffer[]) => number; // returns the number of stanzas seen

const ours: Runner = (pieces) => {
  let count = 0;
  let failure: Error | null = null;
  const parser = new XmlStreamParser(
    { maxStanzaBytes: 256 * 1024, maxDepth: 32, maxAttributes: 64 },
    {
      streamStart() {},
      stanza() {
        count++;
      },
      streamEnd() {},
      error(err) {
        failure ??= err;
      },
    },
  );
  for (const piece of pieces) parser.write(piece);
  if (failure) throw failure;
  return count;
};

const ltx: Runner = (pieces) => {
  let count = 0;
  const parser = new LtxParser();
  parser.on('element', () => {
    count++;
  });
  parser.on('error', (err: Error) => {
    throw err;
  });
  for (const piece of pieces) parser.write(piece);
  return count;
};

interface SaxTag {
  name: string;
  attributes: Record<string, string>;
}
interface SaxParser {
  onopentag: (tag: SaxTag) => void;
  onclosetag: (name: string) => void;
  ontext: (text: string) => void;
  oncdata: (text: string) => void;
  onerror: (err: Error) => void;
  write(s: string): SaxParser;
}
interface SaxModule {
  parser(strict: boolean, opts?: Record<string, unknown>): SaxParser;
}

function saxRunner(sax: SaxModule): Runner {
  return (pieces) => {
    let count = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const parser = sax.parser(true);
    let depth = 0;
    let cursor: Element | null = null;
    parser.onopentag = (tag) => {
      depth++;
      if (depth === 1) return; // the stream header
      const el = new Element(tag.name, tag.attributes);
      if (cursor) {
        cursor.children.push(el);
        el.parent = cursor;
      }
      cursor = el;
    };
    parser.onclosetag = () => {
      depth--;
      if (depth === 1 && cursor) {
        count++;
        cursor = null;
      } else if (cursor) cursor = cursor.parent as Element | null;
    };
    parser.ontext = parser.oncdata = (text) => {
      if (cursor) cursor.children.push(text);
    };
    parser.onerror = (err) => {
      throw err;
    };
    for (const piece of pieces) parser.write(decoder.decode(piece, { stream: true }));
    return count;
  };
}

function measure(name: string, run: Runner, pieces: Buffer[], bytes: number, expected: number): void {
  let best = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const count = run(pieces);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (count !== expected) throw new Error(`${name}: ${count} stanzas, expected ${expected}`);
    best = Math.min(best, seconds);
  }
  const mbps = bytes / 1e6 / best;
  const sps = expected / best;
  console.log(
    `${name.padEnd(28)} ${mbps.toFixed(1).padStart(7)} MB/s ${Math.round(sps).toLocaleString('en').padStart(11)} stanzas/s  (best of ${RUNS}: ${(best * 1000).toFixed(0)} ms)`,
  );
}

const { data, stanzas, perStanza } = buildInput(TARGET_MB * 1e6);
const pieces = chunks(data);
console.log(
  `input: ${(data.length / 1e6).toFixed(1)} MB, ${stanzas.toLocaleString('en')} stanzas (avg ${Math.round(data.length / stanzas)} bytes), ${pieces.length} chunks of 64 KiB; node ${process.version}`,
);

measure('starling XmlStreamParser', ours, pieces, data.length, stanzas);
measure('@xmpp/xml Parser (ltx)', ltx, pieces, data.length, stanzas);
let sax: SaxModule | null = null;
try {
  const mod = (await import('sax' as string)) as { default?: SaxModule } & SaxModule;
  sax = mod.default ?? mod;
} catch {
  console.log('sax (strict)                 skipped: the sax package is not installed');
}
if (sax) measure('sax (strict)', saxRunner(sax), pieces, data.length, stanzas);

// A client connection usually delivers one stanza per socket read: per-write overhead counts.
console.log('\none stanza per write:');
measure('starling XmlStreamParser', ours, perStanza, data.length, stanzas);
measure('@xmpp/xml Parser (ltx)', ltx, perStanza, data.length, stanzas);
if (sax) measure('sax (strict)', saxRunner(sax), perStanza, data.length, stanzas);
