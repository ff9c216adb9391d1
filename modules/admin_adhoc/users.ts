// XEP-0133 account commands: add-user, delete-user, disable-user, reenable-user,
// change-user-password, end-user-session, get-user-roster, get-user-lastlogin.
import { xml } from '@xmpp/xml';
import { AccountError } from '../../src/auth/accounts.js';
import type { Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import { StanzaError, StreamError } from '../../src/stream/errors.js';
import type { Submitted } from '../../src/xml/data-forms.js';
import type { KeyvalStore } from '../../src/storage/stores.js';
import { RosterKey } from '../roster/service.js';
import type { Note } from '../adhoc/service.js';
import { accountjidField, accountjidsField, done, error, info, result, userJid, value, values, type CommandSpec } from './forms.js';

/** When an account last logged in (a session was bound), in milliseconds since the epoch. */
export type LastLogin = { at: number };

/** Ends the local sessions of an account (bare JID) or of one resource (full JID); returns how many. */
export function endSessions(ctx: ModuleContext<unknown>, jid: Jid, error: StreamError): number {
  const { sessions } = ctx.server;
  const targets = jid.isBare ? sessions.resourcesOf(jid) : [sessions.get(jid)].filter((s) => s !== undefined);
  for (const session of targets) session.close(error);
  return targets.length;
}

/** Runs `act` on each account of the accountjids field, validated first; a note per account. */
async function eachAccount(ctx: ModuleContext<unknown>, submitted: Submitted, act: (jid: Jid) => Promise<string>, full = false): Promise<Note[]> {
  const jids = values(submitted, 'accountjids', true).map((v) => userJid(v, ctx.domain, full));
  const notes: Note[] = [];
  for (const jid of jids) {
    try {
      notes.push(info(await act(jid)));
    } catch (err) {
      if (!(err instanceof AccountError)) throw err;
      notes.push(error(err.message));
    }
  }
  return notes;
}

/** An account's operation failed: the stanza error of its AccountError. */
function accountFailure(err: unknown): never {
  if (err instanceof AccountError) throw new StanzaError(err.condition === 'host-unknown' ? 'not-acceptable' : err.condition, err.message);
  throw err;
}

export function userCommands(ctx: ModuleContext<unknown>, lastLogin: KeyvalStore<LastLogin>): CommandSpec[] {
  const { accounts } = ctx.server;
  const log = ctx.log;
  return [
    {
      name: 'add-user',
      label: 'Add a User',
      title: 'Adding a User',
      instructions: 'Fill out this form to add a user.',
      fields: () => [
        accountjidField('The Jabber ID for the account to be added'),
        { var: 'password', type: 'text-private', label: 'The password for this account', values: [], required: true },
        { var: 'password-verify', type: 'text-private', label: 'Retype password', values: [] },
        { var: 'email', type: 'text-single', label: 'Email address', values: [] },
        { var: 'given_name', type: 'text-single', label: 'Given name', values: [] },
        { var: 'surname', type: 'text-single', label: 'Family name', values: [] },
      ],
      async complete(submitted, requester) {
        const jid = userJid(value(submitted, 'accountjid', true), ctx.domain);
        const password = submitted.get('password')?.[0] ?? '';
        if (password === '') throw new StanzaError('not-acceptable', 'the field password is required');
        const verify = submitted.get('password-verify')?.[0];
        if (verify !== undefined && verify !== password) throw new StanzaError('not-acceptable', 'the passwords do not match');
        await accounts.create(jid, password).catch(accountFailure);
        log.info({ jid: jid.toString(), by: requester.bare.toString() }, 'account created by an administrator');
        return done(info(`The account ${jid} has been created.`));
      },
    },
    {
      name: 'delete-user',
      label: 'Delete a User',
      title: 'Deleting a User',
      instructions: 'Fill out this form to delete a user.',
      fields: () => [accountjidsField('The Jabber ID(s) to delete')],
      complete: async (submitted, requester) =>
        done(
          ...(await eachAccount(ctx, submitted, async (jid) => {
            // The deletion ends the account's sessions (<not-authorized/>).
            await accounts.delete(jid);
            log.info({ jid: jid.toString(), by: requester.bare.toString() }, 'account deleted by an administrator');
            return `The account ${jid} has been deleted.`;
          })),
        ),
    },
    {
      name: 'disable-user',
      label: 'Disable a User',
      title: 'Disabling a User',
      instructions: 'Fill out this form to disable a user.',
      fields: () => [accountjidsField('The Jabber ID(s) to disable')],
      complete: async (submitted, requester) =>
        done(
          ...(await eachAccount(ctx, submitted, async (jid) => {
            await accounts.setDisabled(jid, true);
            const closed = endSessions(ctx, jid, new StreamError('not-authorized', 'the account has been disabled'));
            log.info({ jid: jid.toString(), closed, by: requester.bare.toString() }, 'account disabled by an administrator');
            return `The account ${jid} has been disabled.`;
          })),
        ),
    },
    {
      name: 'reenable-user',
      label: 'Re-Enable a User',
      title: 'Re-Enable a User',
      instructions: 'Fill out this form to re-enable a user.',
      fields: () => [accountjidsField('The Jabber ID(s) to re-enable')],
      complete: async (submitted, requester) =>
        done(
          ...(await eachAccount(ctx, submitted, async (jid) => {
            await accounts.setDisabled(jid, false);
            log.info({ jid: jid.toString(), by: requester.bare.toString() }, 'account re-enabled by an administrator');
            return `The account ${jid} has been re-enabled.`;
          })),
        ),
    },
    {
      name: 'change-user-password',
      label: 'Change User Password',
      title: 'Changing a User Password',
      instructions: 'Fill out this form to change a user’s password.',
      fields: () => [
        accountjidField('The Jabber ID for this account'),
        { var: 'password', type: 'text-private', label: 'The password for this account', values: [], required: true },
      ],
      async complete(submitted, requester) {
        const jid = userJid(value(submitted, 'accountjid', true), ctx.domain);
        const password = submitted.get('password')?.[0] ?? '';
        if (password === '') throw new StanzaError('not-acceptable', 'the field password is required');
        await accounts.setPassword(jid, password).catch(accountFailure);
        // As `starling passwd` does: the account's sessions end (<reset/>), the requester's own excepted.
        let closed = 0;
        for (const session of ctx.server.sessions.resourcesOf(jid)) {
          if (session.jid?.equals(requester)) continue;
          session.close(new StreamError('reset', 'the password was changed'));
          closed++;
        }
        log.info({ jid: jid.toString(), closed, by: requester.bare.toString() }, 'password changed by an administrator');
        return done(info(`The password of ${jid} has been changed.`));
      },
    },
    {
      name: 'end-user-session',
      label: 'End User Session',
      title: 'Ending a User Session',
      instructions: 'Fill out this form to end a user’s session.',
      fields: () => [accountjidsField('The Jabber ID(s) for which to end sessions')],
      complete: async (submitted, requester) =>
        done(
          ...(await eachAccount(
            ctx,
            submitted,
            async (jid) => {
              const closed = endSessions(ctx, jid, new StreamError('policy-violation', 'disconnected by the server administrator'));
              log.info({ jid: jid.toString(), closed, by: requester.bare.toString() }, 'sessions ended by an administrator');
              return `${closed} session(s) of ${jid} ended.`;
            },
            true,
          )),
        ),
    },
    {
      name: 'get-user-roster',
      label: 'Get User Roster',
      title: 'Getting a User’s Roster',
      instructions: 'Fill out this form to get a user’s roster.',
      fields: () => [accountjidsField('The Jabber ID(s) for which to retrieve the roster')],
      async complete(submitted) {
        const roster = ctx.tryUse(RosterKey);
        if (!roster) throw new StanzaError('service-unavailable', 'the roster module is not loaded on this host');
        const jids = values(submitted, 'accountjids', true).map((v) => userJid(v, ctx.domain));
        const queries = [];
        for (const jid of jids) {
          if (!(await accounts.exists(jid))) throw new StanzaError('item-not-found', `there is no account ${jid}`);
          const items = await roster.items(jid);
          queries.push(
            xml(
              'query',
              { xmlns: 'jabber:iq:roster' },
              ...items.map((i) =>
                xml('item', { jid: i.jid, name: i.name, subscription: i.subscription, ask: i.ask ? 'subscribe' : undefined }, ...i.groups.map((g) => xml('group', {}, g))),
              ),
            ),
          );
        }
        const step = result([{ var: 'accountjids', type: 'jid-multi', values: jids.map(String) }]);
        for (const query of queries) step.form!.append(query);
        return step;
      },
    },
    {
      name: 'get-user-lastlogin',
      label: 'Get User Last Login Time',
      title: 'Getting a User’s Last Login Time',
      instructions: 'Fill out this form to get a user’s last login time.',
      fields: () => [accountjidsField('The Jabber ID(s) for which to retrieve the last login time')],
      async complete(submitted) {
        const jids = values(submitted, 'accountjids', true).map((v) => userJid(v, ctx.domain));
        const times: string[] = [];
        const notes: Note[] = [];
        for (const jid of jids) {
          if (!(await accounts.exists(jid))) throw new StanzaError('item-not-found', `there is no account ${jid}`);
          const last = await lastLogin.get(jid.domain, jid.local);
          // One value per account, in order; XEP-0082 DateTime, empty for an account never seen.
          times.push(last ? new Date(last.at).toISOString().replace(/\.\d{3}Z$/, 'Z') : '');
          if (!last) notes.push(info(`${jid} has not logged in since the server records logins.`));
        }
        return result(
          [
            { var: 'accountjids', type: 'jid-multi', values: jids.map(String) },
            { var: 'lastlogin', type: times.length === 1 ? 'text-single' : 'text-multi', label: 'Last login', values: times },
          ],
          notes,
        );
      },
    },
  ];
}
