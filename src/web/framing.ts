// Serialised top-level elements made standalone for the web transports: over TCP a stanza
// inherits 'jabber:client' and the stream prefix from the stream header; in a WebSocket message
// (RFC 7395 §3.3.3) or a BOSH body (XEP-0206 §7) each element declares its namespaces itself.
import { NS } from '../xml/namespaces.js';

/** `serialized` (one element) with the namespace declarations it inherited from a stream header. */
export function standalone(serialized: string): string {
  const headEnd = serialized.indexOf('>');
  if (headEnd < 0) return serialized;
  let nameEnd = 1;
  while (nameEnd < headEnd) {
    const c = serialized.charCodeAt(nameEnd);
    if (c === 32 || c === 47 /* / */ || c === 9 || c === 10 || c === 13) break;
    nameEnd++;
  }
  const head = serialized.slice(0, headEnd);
  let declaration: string;
  if (serialized.startsWith('<stream:')) {
    if (head.includes('xmlns:stream=')) return serialized;
    declaration = ` xmlns:stream='${NS.STREAM}'`;
  } else {
    if (head.includes(' xmlns=')) return serialized;
    declaration = ` xmlns='${NS.CLIENT}'`;
  }
  return serialized.slice(0, nameEnd) + declaration + serialized.slice(nameEnd);
}
