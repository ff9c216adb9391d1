// SASL PLAIN (RFC 4616): offered only over TLS, unless explicitly allowed for loopback tests.
import { makeJid, JidError } from '../../src/jid.js';
import type { AuthBackend } from '../../src/auth/backend.js';
import { SaslFailure, type MechanismFactory, type SaslStep } from './mechanism.js';

export function plainFactory(backend: AuthBackend, allowWithoutTls: boolean): MechanismFactory {
  return {
    name: 'PLAIN',
    available: (stream) => stream.secure || allowWithoutTls,
    create: (stream) => {
      const check = async (message: Buffer): Promise<SaslStep> => {
        const [authzid, authcid, password] = message.toString('utf8').split('\0');
        if (authcid === undefined || password === undefined) throw new SaslFailure('malformed-request', 'expected authzid NUL authcid NUL password');
        let jid;
        try {
          jid = makeJid(authcid, stream.host);
        } catch (err) {
          if (!(err instanceof JidError)) throw err;
          // Not even a valid username: the same password check as for any unknown user.
          await backend.verifyPassword(stream.host, authcid, password);
          return { kind: 'failure', condition: 'not-authorized', user: authcid };
        }
        if (authzid && authzid !== jid.toString()) throw new SaslFailure('invalid-authzid', 'authorization identity must be your own account');
        if (!(await backend.verifyPassword(jid.domain, jid.local, password))) return { kind: 'failure', condition: 'not-authorized', user: jid.local };
        return { kind: 'success', user: jid };
      };
      return {
        start: async (initial) => (initial && initial.length ? check(initial) : { kind: 'challenge', data: Buffer.alloc(0) }),
        next: check,
      };
    },
  };
}
