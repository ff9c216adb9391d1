#!/usr/bin/python3
"""Interop run: slixmpp's HTTP File Upload (xep_0363) and SOCKS5 Bytestreams (xep_0065) against
Starling's http_upload and proxy65 modules.

Two accounts, --user1 (alice) and --user2 (bob), slixmpp clients over STARTTLS (see common.py).

1. Upload: alice's xep_0363 finds the upload service through disco, asks for a slot and PUTs a
   random file over HTTPS (aiohttp, trusting exactly the server's self-signed certificate given
   with --cafile); she sends the GET URL to bob in a message; bob downloads it with aiohttp and
   checks the bytes.
2. Proxy: alice's xep_0065 discovers the proxy (disco#items, disco#info proxy/bytestreams, the
   streamhost query) and offers it to bob; bob's xep_0065 (auto_accept) connects to it over SOCKS5
   and answers with streamhost-used; alice connects, activates the bytestream and writes --size
   random bytes, then closes; bob receives them through the proxy and checks them.

Exit status 0: every check passed; 1: a "FAIL: <step>: ..." line on stderr; 3: slixmpp missing.
On success stdout ends with:

    RESULT upload=<bytes downloaded, same as uploaded> user=<bob>
    RESULT bytestream=<bytes received through the proxy, same as sent> user=<bob>
    OK
"""

import asyncio
import hashlib
import os
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failure, SessionClient, base_parser, print_result, retrieve, run  # noqa: E402

import aiohttp  # noqa: E402  (slixmpp's xep_0363 needs it too)
from slixmpp.plugins.xep_0363 import http_upload  # noqa: E402

PLUGINS = ('xep_0030', 'xep_0199', 'xep_0363', 'xep_0065')


def trust_server(cafile):
    """aiohttp, in slixmpp's xep_0363 and here, verifying HTTPS against the server's certificate."""
    context = ssl.create_default_context(cafile=cafile)

    def session(*args, **kwargs):
        return aiohttp.ClientSession(*args, connector=aiohttp.TCPConnector(ssl=context), **kwargs)

    http_upload.ClientSession = session
    return session


def disco_info_as_tasks(xmpp):
    """slixmpp 1.8.3's get_info_from_domain (which xep_0363 discovery uses) hands get_info
    coroutines to asyncio.wait, which Python 3.11 refuses ("Passing coroutines is forbidden");
    get_info returning tasks instead lets it run unchanged."""
    disco = xmpp['xep_0030']
    get_info = disco.get_info
    disco.get_info = lambda *a, **kw: asyncio.ensure_future(get_info(*a, **kw))


async def upload(alice, bob, args, session):
    data = os.urandom(args.upload_size)
    with tempfile.NamedTemporaryFile(suffix='.bin') as f:
        f.write(data)
        f.flush()
        disco_info_as_tasks(alice.xmpp)
        got_url = asyncio.get_running_loop().create_future()
        bob.xmpp.add_event_handler('message', lambda msg: got_url.done() or got_url.set_result(msg['body']))
        try:
            url = await alice.xmpp['xep_0363'].upload_file(f.name, content_type='application/octet-stream', timeout=10)
        except Exception as err:  # noqa: BLE001 - reported as the step's failure
            raise Failure(f'upload: slixmpp could not upload ({type(err).__name__}: {err})') from err
    alice.xmpp.send_message(mto=bob.xmpp.boundjid.bare, mbody=url, mtype='chat')
    received = await asyncio.wait_for(got_url, 10)
    if received != url:
        raise Failure(f'upload: bob got {received!r}, not the URL {url!r}')
    async with session() as http:
        async with http.get(url) as response:
            if response.status != 200:
                raise Failure(f'upload: GET {url} answered {response.status}')
            body = await response.read()
    if hashlib.sha256(body).digest() != hashlib.sha256(data).digest():
        raise Failure(f'upload: downloaded {len(body)} bytes that differ from the {len(data)} uploaded')
    print('PASS upload')
    print_result('upload', len(body), bob.xmpp.boundjid.bare)


async def bytestream(alice, bob, args):
    data = os.urandom(args.size)
    chunks = []
    closed = asyncio.get_running_loop().create_future()
    bob.xmpp['xep_0065'].auto_accept = True
    bob.xmpp.add_event_handler('socks5_data', chunks.append)
    bob.xmpp.add_event_handler('socks5_closed', lambda _exc=None: closed.done() or closed.set_result(True))

    proxies = await alice.xmpp['xep_0065'].discover_proxies(timeout=10)
    if not proxies:
        raise Failure('bytestream: alice found no SOCKS5 proxy through disco')
    sock = await alice.xmpp['xep_0065'].handshake(bob.xmpp.boundjid.full, timeout=10)
    if sock is None:
        raise Failure(f'bytestream: no bytestream through {proxies}')
    await sock.write(data)
    sock.transport.close()  # the protocol object has no close(); its transport flushes, then closes
    await asyncio.wait_for(closed, 30)
    got = b''.join(chunks)
    if got != data:
        raise Failure(f'bytestream: bob received {len(got)} bytes that differ from the {len(data)} sent')
    print('PASS bytestream')
    print_result('bytestream', len(got), bob.xmpp.boundjid.bare)


async def scenario(args):
    session = trust_server(args.cafile)
    alice = SessionClient(args, args.user1, PLUGINS)
    bob = SessionClient(args, args.user2, PLUGINS)
    try:
        for c in (alice, bob):
            c.connect(args)
        await asyncio.gather(alice.session, bob.session)
        await upload(alice, bob, args, session)
        await bytestream(alice, bob, args)
    finally:
        retrieve(alice.session, bob.session)
        await asyncio.gather(alice.close(), bob.close())


if __name__ == '__main__':
    parser = base_parser(__doc__, 60)
    parser.add_argument('--cafile', required=True, help="the server's HTTPS certificate (PEM)")
    parser.add_argument('--size', type=int, default=1 << 20, help='bytes sent through the proxy')
    parser.add_argument('--upload-size', type=int, default=300_000, help='bytes of the uploaded file')
    args = parser.parse_args()
    sys.exit(run(scenario, args, args.timeout))
