// XEP-0050 Ad-Hoc Commands: the framework. Other modules add commands (ctx.use(AdhocKey));
// this one lists them in disco#items of the host's commands node (only those the requester may
// run), answers disco#info of each command node, and runs them: execute, then forms submitted
// with next/complete (and prev, cancel) in a session of the requester, until completed or
// canceled. Errors are XEP-0050's: bad-action, bad-payload, bad-sessionid, malformed-action,
// session-expired (after session_timeout seconds without a request).
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { defineModule } from '../../src/module-api/define.js';
import { StanzaError, type StanzaErrorCondition } from '../../src/stream/errors.js';
import { NS_DATA, readForm } from '../../src/xml/data-forms.js';
import { DiscoKey } from '../disco/service.js';
import { CommandSessions, type CommandSession } from './sessions.js';
import { AdhocKey, NS_COMMANDS, type AdhocCommand, type CommandStep } from './service.js';

export const AdhocConfig = z.strictObject({
  /** Seconds a command session waits for the requester's next request before it expires. */
  session_timeout: z.number().int().min(1).default(600),
});

/** Open command sessions per requester (full JID); the oldest goes first. */
const MAX_SESSIONS = 10;
const ACTIONS = ['execute', 'cancel', 'prev', 'next', 'complete'] as const;
type Action = (typeof ACTIONS)[number];

/** An error with its XEP-0050 §4.6 application condition. */
function commandError(condition: StanzaErrorCondition, specific: string, text: string): StanzaError {
  return new StanzaError(condition, text, undefined, xml(specific, { xmlns: NS_COMMANDS }));
}

function commandElement(node: string, sessionid: string, status: 'executing' | 'completed' | 'canceled', step?: CommandStep, canGoBack = false): Element {
  const form = step?.form;
  let actions: Element | null = null;
  if (step?.status === 'executing') {
    const forward = step.last ? 'complete' : 'next';
    actions = xml('actions', { execute: forward }, canGoBack ? xml('prev') : null, xml(forward));
  }
  return xml('command', { xmlns: NS_COMMANDS, node, sessionid, status }, actions, ...(step?.notes ?? []).map((n) => xml('note', { type: n.type }, n.text)), form ?? null);
}

export default defineModule({
  name: 'adhoc',
  depends: ['disco'],
  config: AdhocConfig,
  setup(ctx) {
    const commands = new Map<string, AdhocCommand>();
    const sessions = new CommandSessions(ctx.config.session_timeout * 1000, MAX_SESSIONS);
    ctx.every(60_000, () => void sessions.sweep());

    ctx.feature(NS_COMMANDS);
    ctx.onUnload(
      ctx.use(DiscoKey).addHostNodes({
        info(node, requester) {
          if (node === NS_COMMANDS) return { identities: [{ category: 'automation', type: 'command-list', name: 'Commands' }], features: [NS_COMMANDS], forms: [] };
          const command = commands.get(node);
          if (!command) return undefined;
          if (!command.allowed(requester)) throw new StanzaError('forbidden', 'this command is for the administrators');
          return { identities: [{ category: 'automation', type: 'command-node', name: command.name }], features: [NS_COMMANDS, NS_DATA], forms: [] };
        },
        items(node, requester) {
          if (node !== NS_COMMANDS) return undefined;
          return [...commands.values()].filter((c) => c.allowed(requester)).map((c) => ({ jid: ctx.domain, node: c.node, name: c.name }));
        },
      }),
    );

    /** Shows a step: the session goes on while a form is shown, and ends with the command. */
    const answer = (requester: string, node: string, session: CommandSession | string, step: CommandStep): Element => {
      const id = typeof session === 'string' ? session : session.id;
      if (step.status === 'completed') {
        sessions.close(requester, id);
        return commandElement(node, id, 'completed', step);
      }
      const steps = typeof session === 'string' ? [step] : session.steps;
      return commandElement(node, id, 'executing', step, steps.length > 1);
    };

    const advance = async (requester: string, session: CommandSession, action: Action, payload: Element): Promise<Element> => {
      const current = session.steps[session.steps.length - 1]!;
      if (action === 'prev') {
        if (session.steps.length < 2) throw commandError('bad-request', 'bad-action', 'there is no previous stage');
        session.steps.pop();
        return answer(requester, session.node, session, session.steps[session.steps.length - 1]!);
      }
      const forward = current.last ? 'complete' : 'next';
      if (action !== 'execute' && action !== forward) throw commandError('bad-request', 'bad-action', `the action offered at this stage is ${forward}`);
      const x = payload.getChild('x', NS_DATA);
      if (!x || x.attrs.type !== 'submit') throw commandError('bad-request', 'bad-payload', 'expected the submitted form (jabber:x:data type="submit")');
      const step = await current.next(readForm(x));
      if (step.status === 'executing') session.steps.push(step);
      return answer(requester, session.node, session, step);
    };

    ctx.iq.set(NS_COMMANDS, 'command', async (iq) => {
      const { node, sessionid } = iq.payload.attrs;
      const action = (iq.payload.attrs.action ?? 'execute') as Action;
      if (!ACTIONS.includes(action)) throw commandError('bad-request', 'malformed-action', `unknown action "${action}"`);
      const command = node === undefined ? undefined : commands.get(node);
      if (!command) throw new StanzaError('item-not-found', `no command ${node ?? '(no node)'}`);
      if (!command.allowed(iq.from)) {
        ctx.log.info({ requester: iq.from.toString(), node }, 'ad-hoc command refused: not an administrator');
        throw new StanzaError('forbidden', 'this command is for the administrators');
      }
      const requester = iq.from.toString();
      if (sessionid === undefined) {
        if (action !== 'execute') throw commandError('bad-request', 'bad-action', `${action} needs the sessionid of a running command`);
        const step = await command.start(iq.from);
        ctx.log.info({ requester, node }, 'ad-hoc command started');
        const session = step.status === 'executing' ? sessions.open(requester, command.node, step) : CommandSessions.newId();
        return iq.reply(answer(requester, command.node, session, step));
      }
      const session = sessions.find(requester, sessionid, command.node);
      if (session === 'expired') throw commandError('not-allowed', 'session-expired', 'the command session has expired; execute the command again');
      if (!session) throw commandError('bad-request', 'bad-sessionid', 'no such command session');
      if (action === 'cancel') {
        sessions.close(requester, session.id);
        return iq.reply(commandElement(command.node, session.id, 'canceled'));
      }
      return iq.reply(await advance(requester, session, action, iq.payload));
    });

    ctx.provide(AdhocKey, {
      add(command) {
        if (commands.has(command.node)) throw new Error(`the ad-hoc command ${command.node} is added already`);
        commands.set(command.node, command);
        return () => void commands.delete(command.node);
      },
    });
  },
});
