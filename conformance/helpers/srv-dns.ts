// A DNS server for interop runs, on UDP loopback, that knows only SRV records (RFC 2782) given
// by the test: for a peer server that finds other servers through DNS only and cannot be given
// a static route, but can be pointed at another resolver (ejabberd: Erlang's inetrc). Names it
// does not know get NXDOMAIN; a known name asked for another type, an empty answer (NODATA).
// Only what a stub resolver asks is handled: one question, no compression in queries, no EDNS.
import dgram from 'node:dgram';

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  /** A host name (or an address literal: the peer then skips the A/AAAA lookup). */
  target: string;
}

export interface SrvDns {
  port: number;
  /** Every question asked so far, as "name TYPE" ("_xmpp-server._tcp.example SRV"). */
  questions: string[];
  close(): Promise<void>;
}

const TYPE_SRV = 33;
const TYPE_NAMES: Record<number, string> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

/** Encodes a domain name as DNS labels. */
function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
}

/** The answer to one query, or undefined when it cannot be parsed (then nothing is sent). */
function answer(query: Buffer, zone: ReadonlyMap<string, SrvRecord[]>, questions: string[]): Buffer | undefined {
  if (query.length < 17 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at]!;
    if (length > 63) return undefined; // a pointer or garbage: not in a plain query
    labels.push(query.toString('latin1', at + 1, at + 1 + length));
    at += 1 + length;
  }
  const end = at + 5; // the root label, QTYPE, QCLASS
  if (end > query.length) return undefined;
  const qtype = query.readUInt16BE(at + 1);
  const name = labels.join('.').toLowerCase();
  questions.push(`${name} ${TYPE_NAMES[qtype] ?? qtype}`);
  const known = zone.get(name);
  const records = known && qtype === TYPE_SRV ? known : [];

  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // the query's ID
  // QR, opcode 0, AA, RD copied from the query; RCODE 3 (NXDOMAIN) for an unknown name.
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const rrs = records.map((r) => {
    const target = encodeName(r.target);
    const rr = Buffer.alloc(18);
    rr.writeUInt16BE(0xc00c, 0); // a pointer to the question's name
    rr.writeUInt16BE(TYPE_SRV, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(5, 6); // TTL
    rr.writeUInt16BE(6 + target.length, 10);
    rr.writeUInt16BE(r.priority, 12);
    rr.writeUInt16BE(r.weight, 14);
    rr.writeUInt16BE(r.port, 16);
    return Buffer.concat([rr, target]);
  });
  return Buffer.concat([header, query.subarray(12, end), ...rrs]);
}

/** Starts the server on 127.0.0.1 (a free UDP port); `zone` maps lower-case names to records and may change later. */
export async function startSrvDns(zone: ReadonlyMap<string, SrvRecord[]>): Promise<SrvDns> {
  const socket = dgram.createSocket('udp4');
  const questions: string[] = [];
  socket.on('message', (query, peer) => {
    const reply = answer(query, zone, questions);
    if (reply) socket.send(reply, peer.port, peer.address);
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let closed: Promise<void> | undefined;
  return {
    port: socket.address().port,
    questions,
    close: () => (closed ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
  };
}
