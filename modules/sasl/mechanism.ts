// The server side of a SASL mechanism, independent of the XMPP profile that carries it
// (RFC 6120 SASL or XEP-0388 SASL2).
import type { Jid } from '../../src/jid.js';
import type { ClientStream } from '../../src/sessions/session.js';

export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; user: Jid; additionalData?: Buffer }
  /** The credentials of `user` were checked and are wrong: counts against the address. */
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string; user: string };

export interface ServerMechanism {
  /** The first step, with the client's initial response (null when it sent none). */
  start(initial: Buffer | null): Promise<SaslStep>;
  /** Each later client response. */
  next(response: Buffer): Promise<SaslStep>;
}

export interface MechanismFactory {
  readonly name: string;
  /** Whether this stream may use the mechanism (TLS for PLAIN, channel binding for -PLUS). */
  available(stream: ClientStream): boolean;
  create(stream: ClientStream): ServerMechanism;
}

export class SaslFailure extends Error {
  constructor(
    readonly condition: SaslFailureCondition,
    text?: string,
  ) {
    super(text ?? condition);
  }
}
