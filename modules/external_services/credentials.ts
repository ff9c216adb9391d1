// TURN REST API credentials (draft-uberti-behave-turn-rest-00), the scheme coturn implements
// with `use-auth-secret` and `static-auth-secret`: the username is `<expiry>:<localpart>` with
// expiry a Unix time, the password the base64 HMAC-SHA1 of the username keyed with the shared
// secret. The TURN server checks the HMAC and refuses a username whose time has passed.
import { createHmac } from 'node:crypto';

export interface TurnCredentials {
  username: string;
  password: string;
  /** When the credentials stop working. */
  expires: Date;
}

export function turnCredentials(secret: string, localpart: string, ttlSeconds: number, now = Date.now()): TurnCredentials {
  const expiry = Math.floor(now / 1000) + ttlSeconds;
  const username = `${expiry}:${localpart}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, expires: new Date(expiry * 1000) };
}

/** XEP-0082 DateTime in UTC, to the second. */
export function dateTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
