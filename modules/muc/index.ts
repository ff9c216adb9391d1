// XEP-0045 Multi-User Chat as a service on a domain of its own (conference.<host> by default):
// rooms (instant and reserved, configuration, destruction, locking: a room nobody configures
// opens by itself), occupants (history, nicknames, private messages, invitations, voice
// requests, passwords, members-only, flood control), affiliations and roles with the spec's
// permission rules, persistent rooms in the database (their discussion history too),
// disco of the service and its rooms, XEP-0421 occupant ids, XEP-0410 self-ping, XEP-0425
// moderation, and a fan-out that serialises each message once for all occupants.
import { z } from 'zod';
import { parseJid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { MucKey } from './api.js';
import { RoomLeases } from './cluster-rooms.js';
import { MucService } from './service.js';
import { MucStore, mucMigrations } from './store.js';
import { RtblKey } from '../anti_spam/rtbl-api.js';

export type { ArchivedRoom, MucApi, RoomArchive, RoomMessageEvent } from './api.js';

export const MucConfig = z.strictObject({
  /** The service's domain; "{host}" stands for the host's domain. */
  domain: z.string().min(1).default('conference.{host}'),
  /** The service's name in service discovery. */
  name: z.string().default('Chatrooms'),
  /** Who may create rooms: "anyone", "local" (accounts of this server) or "admins" (those below). */
  room_creation: z.enum(['anyone', 'local', 'admins']).default('local'),
  /** Bare JIDs that are owners of every room of the service. */
  admins: z.array(z.string()).default([]),
  /** Most occupants a room may have (a room's own limit is at most this). */
  max_occupants: z.number().int().min(1).default(1000),
  /** Most messages of discussion history a room keeps (persistent rooms in the database too) and sends on entering. */
  max_history: z.number().int().min(0).default(100),
  /** History length of a new room (muc#maxhistoryfetch), at most max_history. */
  default_history: z.number().int().min(0).default(20),
  /**
   * Whether a room created with the MUC join element is locked until its owner configures it
   * (XEP-0045 §10.1); false: new rooms are open at once, as instant rooms.
   */
  room_locking: z.boolean().default(true),
  /**
   * Seconds after which a locked room nobody configured opens with the default configuration;
   * its owner's first groupchat message opens it sooner. 0: neither (strict §10.1).
   */
  room_lock_timeout: z.number().min(0).default(30),
  /** Groupchat messages per second an occupant may send to a room, on average (0: no limit; moderators never are). */
  message_rate: z.number().min(0).default(1),
  /** Groupchat messages an occupant may send at once before message_rate applies. */
  message_burst: z.number().int().min(1).default(10),
  /** Joins from addresses on the host's real-time blocklists (anti_spam rtbl) are refused (forbidden). */
  rtbl_ban: z.boolean().default(true),
});

export default defineModule({
  name: 'muc',
  config: MucConfig,
  migrations: mucMigrations,
  async setup(ctx) {
    const config = ctx.config;
    const domain = parseJid(config.domain.replaceAll('{host}', ctx.domain)).toString();
    if (domain.includes('@') || domain.includes('/')) throw new Error(`muc.domain: "${domain}" is not a domain`);
    for (const admin of config.admins) parseJid(admin);
    const store = new MucStore(ctx.server.storage);

    const hosts = ctx.server.hosts;
    const service = new MucService({
      domain,
      name: config.name,
      limits: { maxOccupants: config.max_occupants, maxHistory: config.max_history, defaultHistory: config.default_history },
      flood: config.message_rate > 0 ? { rate: config.message_rate, burst: config.message_burst } : undefined,
      creation: config.room_creation,
      locking: { enabled: config.room_locking, autoUnlockMs: config.room_lock_timeout * 1000 },
      admins: config.admins,
      blocklisted: config.rtbl_ban ? (jid) => ctx.tryUse(RtblKey)?.listed(jid) ?? false : undefined,
      router: ctx.server.router,
      isHost: (d) => hosts.has(d),
      store,
      log: ctx.log.child({ service: domain }),
    });
    // In a cluster a room is served by the node holding its lease, loaded when taken; else every
    // persistent room is loaded now.
    const { cluster, live } = ctx.server;
    const leases =
      cluster && live.redis
        ? new RoomLeases({
            redis: live.redis.client,
            prefix: live.redis.prefix,
            cluster,
            heartbeatMs: ctx.server.config.cluster.heartbeat_interval * 1000,
            service,
            router: ctx.server.router,
            sessions: ctx.server.sessions,
            log: ctx.log.child({ service: domain }),
          })
        : undefined;
    if (leases) {
      service.cluster = leases;
      leases.start();
      ctx.onUnload(() => leases.close());
    } else {
      const restored = await service.restore();
      if (restored > 0) ctx.log.info({ rooms: restored, domain }, 'persistent rooms restored');
    }

    ctx.onUnload(ctx.server.router.addDomain(domain, service.handle));
    ctx.discoItem({ jid: domain, name: config.name });
    ctx.provide(MucKey, service);

    // A user's session that ends leaves its rooms, whatever host it is on (the presence module
    // sends unavailable to the rooms as directed presence too; whichever comes second finds
    // nothing left to do).
    for (const host of hosts.values()) {
      ctx.onUnload(host.hooks.on('session/closed', ({ session }) => void (session.jid && service.sessionClosed(session.jid.toString())), 0, ctx.name));
    }
    ctx.hook('server/stopping', async () => {
      await service.shutdown();
      await leases?.stop();
    });
  },
});
