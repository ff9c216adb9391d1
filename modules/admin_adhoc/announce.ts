// XEP-0133 announcements: announce (a headline to every online user of the host now), and the
// message of the day (set-motd, edit-motd, delete-motd), sent to online users when it is set
// and to each user at login (the session's first available presence), as Prosody's mod_motd does.
// The message of the day is the one item of the host's 'motd' service archive.
import type { ModuleContext } from '../../src/module-api/define.js';
import { announce, headline as hostHeadline } from '../../src/router/announce.js';
import type { ArchiveStore } from '../../src/storage/archive/store.js';
import { done, info, values, type CommandSpec } from './forms.js';

export class Motd {
  constructor(
    private readonly store: ArchiveStore,
    private readonly domain: string,
  ) {}

  async get(): Promise<string | undefined> {
    const ends = await this.store.ends(this.domain, '');
    return ends && (await this.store.get(this.domain, '', ends.last.id))?.stanza;
  }

  async set(text: string): Promise<void> {
    await this.store.removeArchive(this.domain, '');
    await this.store.append(this.domain, '', { withBare: this.domain, withResource: '', direction: 'in', stanza: text });
  }

  async delete(): Promise<boolean> {
    return (await this.store.removeArchive(this.domain, '')) > 0;
  }
}

/** A headline from the host to one full JID. */
export function headline(ctx: ModuleContext<unknown>, to: string, subject: string, body: string) {
  return hostHeadline(ctx.domain, to, subject, body);
}

/** Sends a headline to every session of the host on this node; returns how many. */
const toOnlineUsers = (ctx: ModuleContext<unknown>, subject: string, body: string) => announce(ctx.server, ctx.domain, subject, body);

const text = (lines: string[]) => lines.join('\n');

export function announceCommands(ctx: ModuleContext<unknown>, motd: Motd): CommandSpec[] {
  const motdField = (current: string[]) => ({ var: 'motd', type: 'text-multi' as const, label: 'Message of the Day', values: current, required: true });
  const setMotd = async (submitted: Map<string, string[]>) => {
    const message = text(values(submitted, 'motd', true));
    await motd.set(message);
    const sent = await toOnlineUsers(ctx, 'Message of the day', message);
    ctx.log.info({ sent }, 'message of the day set by an administrator');
    return done(info(`The message of the day is set, and was sent to ${sent} online session(s).`));
  };
  return [
    {
      name: 'announce',
      label: 'Send Announcement to Online Users',
      title: 'Making an Announcement',
      instructions: 'Fill out this form to make an announcement to all active users of this service.',
      fields: () => [{ var: 'announcement', type: 'text-multi', label: 'Announcement', values: [], required: true }],
      async complete(submitted) {
        const sent = await toOnlineUsers(ctx, 'Announcement', text(values(submitted, 'announcement', true)));
        ctx.log.info({ sent }, 'announcement sent by an administrator');
        return done(info(`The announcement was sent to ${sent} online session(s).`));
      },
    },
    {
      name: 'set-motd',
      label: 'Set Message of the Day',
      title: 'Setting the Message of the Day',
      instructions: 'Fill out this form to set the message of the day.',
      fields: () => [motdField([])],
      complete: setMotd,
    },
    {
      name: 'edit-motd',
      label: 'Edit Message of the Day',
      title: 'Editing the Message of the Day',
      instructions: 'Fill out this form to edit the message of the day.',
      fields: async () => {
        const current = await motd.get();
        return [motdField(current === undefined ? [] : current.split('\n'))];
      },
      complete: setMotd,
    },
    {
      name: 'delete-motd',
      label: 'Delete Message of the Day',
      async run() {
        const deleted = await motd.delete();
        ctx.log.info('message of the day deleted by an administrator');
        return done(info(deleted ? 'The message of the day has been deleted.' : 'There was no message of the day.'));
      },
    },
  ];
}
