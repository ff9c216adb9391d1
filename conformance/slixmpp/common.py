"""What the slixmpp interop scripts (c2s_scram_messages.py, im_flows.py, muc_groupchat.py) share:
the slixmpp import (exit status 3 when it is missing), the common command-line options, a
client for the test server (STARTTLS with its self-signed certificate accepted, SCRAM without
channel binding), the ping round trip after initial presence, closing, the RESULT lines and the
main loop with its exit status (0: every check passed; 1: a "FAIL: ..." line on stderr).

Debian's slixmpp (1.8.x) only knows the channel-binding type tls-unique, undefined over TLS 1.3
(RFC 9266) and not offered by Starling (it advertises tls-exporter and tls-server-end-point with
XEP-0440). Left alone, slixmpp tries SCRAM-*-PLUS with p=tls-unique, then plain SCRAM with the
gs2 flag 'y', which a server offering -PLUS MUST refuse as a downgrade (RFC 5802 section 6).
without_channel_binding() tells slixmpp, through the feature_mechanisms sasl_callback, that it has
no channel-binding data, so it sends the gs2 flag 'n'.
"""

import argparse
import asyncio
import logging
import ssl
import sys

try:
    import slixmpp
    from slixmpp import ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout
except ImportError as err:  # pragma: no cover - reported to the caller
    print(f'FAIL: cannot import slixmpp ({err}); install python3-slixmpp and use /usr/bin/python3', file=sys.stderr)
    sys.exit(3)

__all__ = [
    'ClientXMPP', 'Failure', 'IqError', 'IqTimeout', 'SessionClient', 'base_parser', 'close', 'connect', 'new_client', 'ping_server',
    'print_result', 'retrieve', 'run', 'without_channel_binding',
]


class Failure(Exception):
    """A failed check; its text is the FAIL line."""


def base_parser(doc, timeout):
    """The options every script takes: where the server is, two users and their password, limits."""
    p = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True, help='the STARTTLS c2s port')
    p.add_argument('--domain', default='localhost')
    p.add_argument('--password', required=True)
    p.add_argument('--user1', default='alice')
    p.add_argument('--user2', default='bob')
    p.add_argument('--timeout', type=float, default=timeout, help='overall time limit in seconds')
    p.add_argument('--debug', action='store_true', help='slixmpp debug logging (the XML exchanged) on stderr')
    return p


def without_channel_binding(xmpp):
    """Makes slixmpp claim no channel-binding support (gs2 flag 'n'), see the module's docstring."""
    mechs = xmpp['feature_mechanisms']
    default_callback = mechs.sasl_callback

    def credentials(required, optional):
        values = default_callback(required, optional)
        values.pop('channel_binding', None)
        return values

    mechs.sasl_callback = credentials


def new_client(jid, password, mechanism='SCRAM-SHA-256', plugins=(), channel_binding=False):
    """A ClientXMPP for the test server, whose certificate is self-signed (no verification, no host
    name check), with `plugins` registered; `mechanism` None lets slixmpp choose. Unless
    `channel_binding`, it claims no channel binding."""
    xmpp = ClientXMPP(jid, password, sasl_mech=mechanism)
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    xmpp.ssl_context.check_hostname = False
    xmpp.ssl_context.verify_mode = ssl.CERT_NONE
    if not channel_binding:
        without_channel_binding(xmpp)
    return xmpp


def connect(xmpp, args):
    """Connects to --host/--port, STARTTLS required."""
    xmpp.connect(address=(args.host, args.port), force_starttls=True)


async def ping_server(xmpp, timeout):
    """A ping (xep_0199) round trip to the server: once it answers, it has processed everything sent
    before on the stream (RFC 6120 section 10.1: in-order processing). Any answer will do, an error
    included. False when there was none within `timeout` seconds."""
    try:
        await xmpp['xep_0199'].send_ping(xmpp.boundjid.host, timeout=timeout)
    except IqError:
        pass
    except IqTimeout:
        return False
    return True


async def close(xmpp, wait, limit):
    """Disconnects, waiting up to `wait` s for the server's stream end and `limit` s in all; aborts
    the connection when that fails (closing is best effort)."""
    if xmpp.transport is not None:
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=wait), limit)
        except Exception:  # noqa: BLE001 - closing is best effort
            xmpp.abort()


class SessionClient:
    """A client for the test server (new_client with `plugins`) whose `session` future resolves
    with the bound full JID once initial presence is sent and a ping round trip is done, or fails
    with the reason the session could not start."""

    def __init__(self, args, local, plugins):
        self.label = local
        self.xmpp = new_client(f'{local}@{args.domain}/slix', args.password, plugins=plugins)
        self.session = asyncio.get_running_loop().create_future()
        self.closing = False
        x = self.xmpp
        x.add_event_handler('session_start', self._on_session_start)
        x.add_event_handler('failed_all_auth', lambda _e=None: self._fail('authentication failed'))
        x.add_event_handler('connection_failed', lambda e: self._fail(f'connection failed: {e}'))
        x.add_event_handler('stream_error', lambda e: self._fail(f"stream error: {e['condition']}"))

    def _fail(self, reason):
        if not self.closing and not self.session.done():
            self.session.set_exception(Failure(f'{self.label}: {reason}'))

    async def _on_session_start(self, _event):
        self.xmpp.send_presence()
        await ping_server(self.xmpp, 10)
        if not self.session.done():
            self.session.set_result(self.xmpp.boundjid.full)

    def connect(self, args):
        connect(self.xmpp, args)

    async def close(self):
        self.closing = True
        await close(self.xmpp, 1, 3)


def retrieve(*futures):
    """Marks the futures' exceptions as retrieved: no "exception was never retrieved" noise."""
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()


def print_result(key, value, user):
    """A line the test reads (conformance/helpers/python.ts): RESULT key=value user=<bare jid>."""
    print(f'RESULT {key}={value} user={user}')


def run(scenario, args, limit, banner='', errors=(asyncio.TimeoutError,), describe=None):
    """Runs `scenario(args)` within `limit` seconds; returns the exit status. A Failure, or one of
    `errors` (told by `describe(err)`; by default the time limit), prints a FAIL line on stderr."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format='%(asctime)s %(levelname)-7s %(name)s %(message)s', stream=sys.stderr)
    print(f'slixmpp {slixmpp.__version__} on Python {sys.version.split()[0]}{banner}')
    try:
        asyncio.run(asyncio.wait_for(scenario(args), limit))
    except Failure as err:
        print(f'FAIL: {err}', file=sys.stderr)
        return 1
    except errors as err:
        reason = describe(err) if describe else f'overall time limit of {args.timeout:.0f} s exceeded'
        print(f'FAIL: {reason}', file=sys.stderr)
        return 1
    print('OK')
    return 0
