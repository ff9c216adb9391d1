// DST.ADDR of an XEP-0065 bytestream: SHA1(SID + initiator JID + target JID), hex, the JIDs as
// used in the IQ exchange after stringprep (XEP-0065 §6.3.2).
import { createHash } from 'node:crypto';
import type { Jid } from '../../src/jid.js';

export function streamHash(sid: string, initiator: Jid, target: Jid): string {
  return createHash('sha1').update(`${sid}${initiator.toString()}${target.toString()}`).digest('hex');
}
