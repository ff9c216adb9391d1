// Interop with slixmpp's ComponentXMPP (XEP-0114, Debian's python3-slixmpp): the Python echo bot
// of examples/echo-bot/echo_bot.py connects to Starling's component listener with the shared
// secret, a user (@xmpp/client) sends it a chat message and gets the same body back, and the bot
// enters a room it is invited to. Skipped, with the reason, when /usr/bin/python3 cannot import
// slixmpp, unless STARLING_REQUIRE_SERVICES=1 (then a failure).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import type { Element } from '@xmpp/xml';
import { xml } from '../../test/helpers/clients.js';
import { BOT, componentEvent, startBotProcess, startComponentServer } from '../../test/helpers/components.js';
import { createInstant, MUC_USER, presenceFrom, SERVICE, users } from '../../test/integration/muc-helpers.js';
import { needPythonModule, SYSTEM_PYTHON } from '../helpers/python.js';

const SCRIPT = fileURLToPath(new URL('../../examples/echo-bot/echo_bot.py', import.meta.url));

if (needPythonModule(t, 'slixmpp', 'python3-slixmpp', 'slixmpp component interop test (conformance/slixmpp/component.test.ts)')) {
  t.test('slixmpp ComponentXMPP: handshake, a message from a user answered, an invitation followed', async (t) => {
    const ts = await startComponentServer(t);
    const [alice] = await users(t, ts, 'alice');
    const connected = componentEvent(ts, 'connected');
    const bot = await startBotProcess(t, ts, SYSTEM_PYTHON, [SCRIPT], { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' });
    await connected;
    t.pass('the slixmpp component passed the handshake');

    const body = 'Hello slixmpp ❤ <&>';
    await alice!.send(xml('message', { to: BOT, type: 'chat', id: 's1' }, xml('body', {}, body)));
    const reply = await alice!.next((el: Element) => el.name === 'message' && el.attrs.from === BOT);
    t.equal(reply.getChildText('body'), body, 'the reply carries the same body');
    t.equal(reply.attrs.type, 'chat', 'as a chat message');
    t.equal(reply.attrs.to, alice!.jid, 'to the full JID that sent it');

    const room = `pylounge@${SERVICE}`;
    await createInstant(alice!, room, 'alice');
    await alice!.send(xml('message', { to: room }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: BOT }))));
    await alice!.next(presenceFrom(`${room}/echo`), 10_000);
    t.pass('invited by the room, the slixmpp bot entered it');

    const gone = componentEvent(ts, 'disconnected');
    await bot.stop();
    await gone;
    t.pass('stopped, it disconnected cleanly');
  });
}
