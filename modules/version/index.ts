// XEP-0092 Software Version: the server says what it is. The operating system is left out
// unless `show_os` is on (XEP-0092, Security Considerations: revealing it invites attacks
// aimed at that system, so an administrator must be able to withhold it).
import os from 'node:os';
import { xml } from '@xmpp/xml';
import { z } from 'zod';
import { defineModule } from '../../src/module-api/define.js';
import { VERSION } from '../../src/version.js';

export const NS_VERSION = 'jabber:iq:version';

export const VersionConfig = z.strictObject({
  /** Include the operating system (name and release) in the answer. */
  show_os: z.boolean().default(false),
});

export default defineModule({
  name: 'version',
  config: VersionConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  setup(ctx) {
    const osText = `${os.type()} ${os.release()}`;
    ctx.feature(NS_VERSION);
    ctx.iq.get(NS_VERSION, 'query', (iq) =>
      iq.reply(xml('query', { xmlns: NS_VERSION }, xml('name', {}, 'Starling'), xml('version', {}, VERSION), ctx.config.show_os ? xml('os', {}, osText) : null)),
    );
  },
});
