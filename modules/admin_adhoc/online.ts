// XEP-0133 counts and lists: get-registered-users-num, get-online-users-num (sessions, as
// Prosody and ejabberd count them), get-online-users-list (accounts with a session).
import type { ModuleContext } from '../../src/module-api/define.js';
import type { Session } from '../../src/sessions/session.js';
import { StanzaError } from '../../src/stream/errors.js';
import { result, value, type CommandSpec } from './forms.js';

const MAX_ITEMS = ['25', '50', '75', '100', '150', '200'];

/** The bound sessions of this host on this node. */
export function* hostSessions(ctx: ModuleContext<unknown>): Generator<Session> {
  for (const session of ctx.server.sessions.all()) if (session.jid?.domain === ctx.domain && !session.closed) yield session;
}

export function onlineCommands(ctx: ModuleContext<unknown>): CommandSpec[] {
  return [
    {
      name: 'get-registered-users-num',
      label: 'Get Number of Registered Users',
      run: async () =>
        result([{ var: 'registeredusersnum', type: 'text-single', label: 'The number of registered users', values: [String(await ctx.server.accounts.store.count(ctx.domain))] }]),
    },
    {
      name: 'get-online-users-num',
      label: 'Get Number of Online Users',
      run: () => result([{ var: 'onlineusersnum', type: 'text-single', label: 'The number of online users', values: [String([...hostSessions(ctx)].length)] }]),
    },
    {
      name: 'get-online-users-list',
      label: 'Get List of Online Users',
      title: 'Requesting List of Online Users',
      instructions: 'Fill out this form to request the online users of this service.',
      fields: () => [
        {
          var: 'max_items',
          type: 'list-single',
          label: 'Maximum number of items to show',
          values: ['25'],
          options: [...MAX_ITEMS.map((n): [string, string] => [n, n]), ['none', 'None']],
        },
      ],
      complete(submitted) {
        const max = value(submitted, 'max_items', false) ?? '25';
        if (max !== 'none' && !MAX_ITEMS.includes(max)) throw new StanzaError('not-acceptable', `max_items: expected one of ${MAX_ITEMS.join(', ')} or none`);
        const users = [...new Set([...hostSessions(ctx)].map((s) => s.jid!.bare.toString()))].sort();
        const shown = max === 'none' ? users : users.slice(0, Number(max));
        return result([{ var: 'onlineuserjids', type: 'jid-multi', label: 'The list of all online users', values: shown }]);
      },
    },
  ];
}
