// XEP-0077 In-Band Registration: creating an account before authentication (off unless
// allow_registration; over TLS unless c2s.require_encryption is off; throttled per IP; with
// require_invitation, only with a token from `starling invite`, given as the form field
// 'token' or beforehand by XEP-0445 <preauth/>), and, once authenticated, changing one's
// password and removing one's account.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { AccountError } from '../../src/auth/accounts.js';
import type { Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { IqRequest } from '../../src/module-api/iq.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StanzaError, StreamError } from '../../src/stream/errors.js';
import { InviteStore, registerMigrations } from './store.js';
import { inviteCommand } from './commands.js';

const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';
const NS_DATA = 'jabber:x:data';
const STREAM_STATE = sessionKey<StreamState>('register');
/** XEP-0445: the stream feature of a server that takes invitation tokens, and the <preauth/> element. */
const NS_IBR_TOKEN = 'urn:xmpp:ibr-token:0';
const NS_PARS = 'urn:xmpp:pars:0';

export const RegisterConfig = z.strictObject({
  /** Whether anyone may create an account in-band (XEP-0077). */
  allow_registration: z.boolean().default(false),
  /** Registration needs an invitation token (`starling invite`). */
  require_invitation: z.boolean().default(false),
  /** Accounts one IP address may register per hour; 0: no limit. */
  registrations_per_ip_per_hour: z.number().int().min(0).default(5),
});
export type RegisterConfig = z.infer<typeof RegisterConfig>;

/** What one client stream did with registration so far (session.data 'register'). */
interface StreamState {
  /** A token accepted by XEP-0445 <preauth/>: no longer checked for expiry on this stream. */
  preauthToken?: string;
  registered?: boolean;
}

/** The fields of a registration or password change, from the data form or the legacy elements. */
function submitted(query: Element, formTypes: readonly string[]): Record<string, string | undefined> {
  const form = query.getChild('x', NS_DATA);
  if (form && form.attrs.type === 'submit') {
    const fields: Record<string, string | undefined> = {};
    for (const field of form.getChildren('field')) if (field.attrs.var) fields[field.attrs.var] = field.getChildText('value') ?? undefined;
    if (fields.FORM_TYPE !== undefined && !formTypes.includes(fields.FORM_TYPE)) {
      throw new StanzaError('bad-request', `the form's FORM_TYPE must be ${formTypes.join(' or ')}`);
    }
    return fields;
  }
  return { username: query.getChildText('username') ?? undefined, password: query.getChildText('password') ?? undefined };
}

function field(name: string, type: string, label: string): Element {
  return xml('field', { var: name, type, label }, xml('required'));
}

function toStanzaError(err: unknown): unknown {
  if (!(err instanceof AccountError)) return err;
  switch (err.condition) {
    case 'conflict':
      return new StanzaError('conflict', err.message);
    case 'not-acceptable':
      return new StanzaError('not-acceptable', err.message);
    case 'item-not-found':
      return new StanzaError('registration-required', err.message);
    default:
      return new StanzaError('internal-server-error');
  }
}

export default defineModule({
  name: 'register',
  commands: [inviteCommand],
  config: RegisterConfig,
  migrations: registerMigrations,
  async setup(ctx) {
    const { allow_registration: open, require_invitation: invitation, registrations_per_ip_per_hour: perHour } = ctx.config;
    const accounts = ctx.server.accounts;
    const counters = ctx.server.live.counters;
    const invites = await InviteStore.open(ctx.server.storage);
    const stateOf = (stream: ClientStream): StreamState => {
      let state = stream.data.get(STREAM_STATE);
      if (!state) stream.data.set(STREAM_STATE, (state = {}));
      return state;
    };

    // Password changes and removal are in-band whenever the module is loaded (XEP-0077 §10).
    ctx.feature(NS_REGISTER);
    ctx.streamFeature({
      stage: 'pre-auth',
      advertise: () => (open ? xml('register', { xmlns: NS_FEATURE }) : undefined),
    });
    ctx.streamFeature({
      stage: 'pre-auth',
      advertise: () => (open && invitation ? xml('register', { xmlns: NS_IBR_TOKEN }) : undefined),
    });
    if (invitation) {
      ctx.every(3600_000, () => {
        invites.purge(ctx.domain).catch((err: unknown) => ctx.log.warn({ err }, 'purging used and expired invitations failed'));
      });
    }

    // --- before authentication: registering ------------------------------------------------

    const registrationForm = () =>
      xml(
        'x',
        { xmlns: NS_DATA, type: 'form' },
        xml('title', {}, `Register on ${ctx.domain}`),
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_REGISTER)),
        field('username', 'text-single', 'Username'),
        field('password', 'text-private', 'Password'),
        invitation ? field('token', 'text-single', 'Invitation token') : null,
      );

    ctx.preAuthIq('get', NS_REGISTER, 'query', (iq) => {
      // XEP-0077 §3.1: a host without in-band registration answers service-unavailable.
      if (!open) throw new StanzaError('service-unavailable', 'in-band registration is off');
      const instructions = invitation
        ? `Choose a username and password for ${ctx.domain}. Registration needs an invitation token: fill in the form, or send it with XEP-0445 <preauth/> first.`
        : `Choose a username and password for ${ctx.domain}.`;
      // The legacy fields for old clients, and the form (XEP-0077 §4), which alone can carry a token.
      return iq.reply(xml('query', { xmlns: NS_REGISTER }, xml('instructions', {}, instructions), xml('username'), xml('password'), registrationForm()));
    });

    ctx.preAuthIq('set', NS_PARS, 'preauth', async (iq) => {
      if (!open || !invitation) throw new StanzaError('service-unavailable');
      const token = iq.payload.attrs.token;
      if (!token) throw new StanzaError('bad-request', 'the token attribute is missing');
      // XEP-0445 §4: checked (expiry included) now, counted only when the registration succeeds.
      if (!(await invites.usable(ctx.domain, token))) throw new StanzaError('item-not-found', 'the token is invalid or expired');
      stateOf(iq.stream).preauthToken = token;
      return iq.reply();
    });

    ctx.preAuthIq('set', NS_REGISTER, 'query', async (iq) => {
      if (!open) throw new StanzaError('service-unavailable', 'in-band registration is off');
      // XEP-0077 §3.2: a removal from an entity that is not authenticated has no account to remove.
      if (iq.payload.getChild('remove')) throw new StanzaError('unexpected-request', 'authenticate first to remove an account', 'modify');
      const state = stateOf(iq.stream);
      // XEP-0077 §3.1.1: one account per connection.
      if (state.registered) throw new StanzaError('not-acceptable', 'an account was registered on this connection already; authenticate with it');
      const fields = submitted(iq.payload, [NS_REGISTER]);
      // XEP-0077 §3.1: every field asked for must be there, and a password may not be empty.
      if (!fields.username || !fields.password) throw new StanzaError('not-acceptable', 'a username and a password are required');

      const ip = iq.stream.remoteAddress;
      const throttle = `register:${ctx.domain}:${ip}`;
      if (perHour > 0 && (await counters.peek(throttle)) >= perHour) {
        // RFC 6120 §8.3.3.12: a local service policy, with type "wait": try again later.
        ctx.log.warn({ ip }, 'registration refused: too many from this address this hour');
        throw new StanzaError('policy-violation', 'too many accounts were registered from this address; try again later', 'wait');
      }
      let jid: Jid;
      try {
        jid = accounts.userJid(`${fields.username}@${ctx.domain}`);
      } catch (err) {
        throw toStanzaError(err);
      }

      const token = invitation ? (fields.token ?? state.preauthToken) : undefined;
      if (invitation) {
        if (!token) throw new StanzaError('forbidden', `registration on ${ctx.domain} needs an invitation token`);
        const ignoreExpiry = token === state.preauthToken;
        if (!(await invites.take(ctx.domain, token, { ignoreExpiry }))) {
          throw new StanzaError('forbidden', 'the invitation token is unknown, used up or expired');
        }
      }
      try {
        await accounts.create(jid, fields.password);
      } catch (err) {
        if (token) await invites.giveBack(ctx.domain, token);
        throw toStanzaError(err);
      }
      state.registered = true;
      await counters.hit(throttle, 3600_000);
      ctx.log.info({ jid: jid.toString(), ip, invited: token !== undefined }, 'account registered in-band');
      return iq.reply();
    });

    // --- after authentication: the account's own registration ------------------------------

    /** Only a local account, over its own session, manages its registration here. */
    const ownAccount = (iq: IqRequest): Jid => {
      if (!iq.session || iq.from.domain !== ctx.domain || iq.from.local === '') throw new StanzaError('service-unavailable');
      return iq.from.bare;
    };

    ctx.iq.get(NS_REGISTER, 'query', (iq) => {
      const user = ownAccount(iq);
      return iq.reply(
        xml(
          'query',
          { xmlns: NS_REGISTER },
          xml('registered'),
          xml('instructions', {}, 'You are registered. Send your username and a new password to change it, or <remove/> to delete your account.'),
          xml('username', {}, user.local),
          xml('password'),
        ),
      );
    });

    ctx.iq.set(NS_REGISTER, 'query', async (iq) => {
      const user = ownAccount(iq);
      if (iq.payload.getChild('remove')) return remove(iq, user);
      return changePassword(iq, user);
    });

    /** XEP-0077 §3.3. */
    const changePassword = async (iq: IqRequest, user: Jid) => {
      if (!iq.session!.secure && ctx.server.config.c2s.require_encryption) {
        throw new StanzaError('not-authorized', 'change passwords over TLS only', 'modify');
      }
      const fields = submitted(iq.payload, [NS_REGISTER, 'jabber:iq:register:changepassword']);
      if (!fields.username) throw new StanzaError('bad-request', 'the username is required');
      const named = fields.username.includes('@') ? fields.username : `${fields.username}@${ctx.domain}`;
      let target: Jid;
      try {
        target = accounts.userJid(named);
      } catch {
        throw new StanzaError('bad-request', 'the username is not valid');
      }
      if (!target.equals(user)) throw new StanzaError('forbidden', 'only your own password can be changed');
      // §3.3: an empty password never replaces the current one.
      if (!fields.password) throw new StanzaError('bad-request', 'the new password is empty; the password stays as it was');
      try {
        await accounts.setPassword(user, fields.password);
      } catch (err) {
        throw toStanzaError(err);
      }
      ctx.log.info({ jid: user.toString() }, 'password changed in-band');
      return iq.reply();
    };

    /**
     * XEP-0077 §3.2: delete the account, reply, then end every session of the account with a
     * <not-authorized/> stream error. The core closes a deleted account's sessions as part of
     * the deletion; the sessions are taken out of routing first so that it does not end the
     * requester's stream before the reply is out. If the deletion fails, they are put back.
     */
    const remove = async (iq: IqRequest, user: Jid) => {
      const elements = iq.payload.children.filter((c): c is Element => typeof c !== 'string');
      if (elements.length !== 1) throw new StanzaError('bad-request', '<remove/> must be the only child of <query/>');
      const sessions = ctx.server.sessions;
      const live = sessions.resourcesOf(user).filter((s): s is Session & { jid: Jid } => s.jid !== undefined);
      for (const s of live) sessions.remove(s);
      try {
        await accounts.delete(user);
      } catch (err) {
        for (const s of live) if (!s.closed && !sessions.get(s.jid)) sessions.add(s);
        throw toStanzaError(err);
      }
      ctx.log.info({ jid: user.toString() }, 'account removed in-band');
      // Handed to the requester's session at once, so it goes out before the stream error.
      iq.session!.deliver(iq.reply());
      const gone = new StreamError('not-authorized', 'the account has been removed');
      for (const s of live) s.close(gone);
      if (!live.includes(iq.session as Session & { jid: Jid })) iq.session!.close(gone);
    };
  },
});
