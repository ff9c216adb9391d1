// Parsed JIDs of addresses that hot paths see again and again: blocking's 'stanza/out' gate
// runs for every stanza a session is sent, and MAM reads the 'by' of every stanza-id of every
// message it is handed; a room's fan-out repeats one 'from' (and one stanza-id 'by') for each
// of its occupants. Parsing is PRECIS preparation, deterministic, and a Jid is immutable, so the
// result for a string can be reused.
import { tryParseJid, type Jid } from './jid.js';

/** Strings remembered; past this the oldest go first. */
const MAX_ENTRIES = 4096;
/** Longer strings are parsed every time, so the cache stays small (a few MB at the most). */
const MAX_LENGTH = 512;
const cache = new Map<string, Jid | null>();

/** tryParseJid, remembering the last few thousand answers. */
export function tryParseJidCached(s: string): Jid | null {
  const known = cache.get(s);
  if (known !== undefined) return known;
  const jid = tryParseJid(s);
  if (s.length <= MAX_LENGTH) {
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(s, jid);
  }
  return jid;
}
