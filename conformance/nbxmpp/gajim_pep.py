#!/usr/bin/python3
"""Interop run: nbxmpp (Gajim's XMPP library) against Starling's PEP, the way Gajim uses it.

Three clients log in with nbxmpp.client.Client on a GLib main loop (see driver.py): --user1 twice
(resources 'laptop' and 'phone', both advertising +notify for the OMEMO device list and for
bookmarks 2 in their entity capabilities) and --user2 ('desktop', not a contact of user1).

OMEMO, as Gajim's omemo plugin does it with nbxmpp's OMEMO module:
- laptop requests its own device list (none yet), publishes [LAPTOP] with set_devicelist
  (publish-options persist_items, access_model=open) and its bundle with set_bundle;
- phone waits for the device-list notification naming LAPTOP, reads the list, publishes
  [LAPTOP, PHONE], then its bundle first with access_model=presence and then, as Gajim does,
  with access_model=open: the server answers precondition-not-met, nbxmpp reconfigures the node
  (owner configuration form) and publishes again;
- laptop waits for the notification naming PHONE;
- user2 fetches the device list and both bundles with request_devicelist / request_bundle.

Bookmarks 2 (XEP-0402), with nbxmpp's NativeBookmarks module: laptop stores two bookmarks
(store_bookmarks: one publish per room, access_model=whitelist, max_items=max,
send_last_published_item=never); phone receives both notifications and reads them back with
request_bookmarks; laptop retracts one (retract_bookmark), phone receives the retraction and
reads one bookmark; user2 may not read user1's bookmarks.

Run it with Debian's /usr/bin/python3 (python3-nbxmpp). Exit status 0: every check passed; a
failure prints "FAIL: ..." on stderr and exits 1 (3: nbxmpp missing). --debug logs the XML.
On success stdout ends with:

    RESULT account_features=<publish-options, config-node-max, bookmarks:1#compat if advertised> user=<user1>
    RESULT devices=<device ids user2 fetched, comma-separated> user=<user2's bare jid>
    RESULT bundles=<signed prekey ids of the bundles user2 fetched> user=<user2's bare jid>
    RESULT bookmarks=<room jids phone read, comma-separated> user=<phone's full jid>
    RESULT retracted=<room jid whose retraction phone received> user=<phone's full jid>
    RESULT after_retract=<room jids phone read after it> user=<phone's full jid>
    RESULT stranger_bookmarks=<the error's condition> user=<user2's bare jid>
    OK
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import Account, Driver, Failure, Namespace, base_parser, configure_logging, print_result  # noqa: E402

from nbxmpp.protocol import JID  # noqa: E402
from nbxmpp.structs import BookmarkData, OMEMOBundle  # noqa: E402

LAPTOP, PHONE = 1234567, 7654321
NODE_MAX = 'http://jabber.org/protocol/pubsub#config-node-max'


def bundle(spk_id):
    """A bundle shaped like a real one; the server stores it without looking inside."""
    return OMEMOBundle(spk={'id': spk_id, 'key': b'\x05' + bytes(32)}, spk_signature=bytes(range(64)), ik=b'\x05' + bytes(range(32)),
                       otpks=[{'id': n, 'key': b'\x05' + bytes([n]) * 32} for n in range(1, 4)])


def devices_named(device):
    return lambda e: e.node == Namespace.OMEMO_TEMP_DL and e.data is not None and device in e.data


def summary(bookmark):
    return (str(bookmark.jid), bookmark.name, bookmark.nick, bookmark.autojoin)


def bookmark_jids(bookmarks):
    return ','.join(sorted(str(b.jid) for b in bookmarks))


def scenario(args):
    def run(driver):
        notify = [Namespace.OMEMO_TEMP_DL, Namespace.BOOKMARKS_1]
        laptop = Account(driver, args, args.user1, 'laptop', notify)
        phone = Account(driver, args, args.user1, 'phone', notify)
        stranger = Account(driver, args, args.user2, 'desktop', [Namespace.OMEMO_TEMP_DL])
        for account in (laptop, phone, stranger):
            yield account.connected
        # What Gajim reads in the account's disco#info before it picks a bookmarks module.
        info = (yield laptop.module('Discovery').disco_info(JID.from_string(laptop.bare))).finish()
        wanted = [Namespace.PUBSUB_PUBLISH_OPTIONS, NODE_MAX, Namespace.BOOKMARKS_COMPAT]
        print_result('account_features', ','.join(f for f in wanted if f in info.features), laptop.bare)
        omemo = laptop.module('OMEMO')

        # laptop: Gajim's first login with OMEMO.
        task = yield omemo.request_devicelist()
        if task.finish():
            raise Failure(f'laptop: a fresh account already has OMEMO devices {task.finish()!r}')
        (yield omemo.set_devicelist([LAPTOP], public=True)).finish()
        (yield omemo.set_bundle(bundle(1), LAPTOP, public=True)).finish()

        # phone: a second OMEMO device of the same account.
        yield phone.pubsub_event('the device-list notification naming the laptop', devices_named(LAPTOP))
        omemo = phone.module('OMEMO')
        current = (yield omemo.request_devicelist()).finish()
        if current != [LAPTOP]:
            raise Failure(f'phone: own device list is {current!r}, expected [{LAPTOP}]')
        (yield omemo.set_devicelist([LAPTOP, PHONE], public=True)).finish()
        (yield omemo.set_bundle(bundle(2), PHONE, public=False)).finish()
        (yield omemo.set_bundle(bundle(2), PHONE, public=True)).finish()  # precondition-not-met, reconfigure, publish
        yield laptop.pubsub_event('the device-list notification naming the phone', devices_named(PHONE))

        # The stranger, as Gajim does before encrypting to a new contact.
        omemo = stranger.module('OMEMO')
        owner = JID.from_string(laptop.bare)
        devices = (yield omemo.request_devicelist(owner)).finish()
        print_result('devices', ','.join(str(d) for d in devices), stranger.bare)
        spks = []
        for device in devices:
            fetched = (yield omemo.request_bundle(owner, device)).finish()
            if fetched.ik != bundle(0).ik or len(fetched.otpks) != 3:
                raise Failure(f'stranger: the bundle of device {device} came back as {fetched!r}')
            spks.append(str(fetched.spk['id']))
        print_result('bundles', ','.join(spks), stranger.bare)

        # Bookmarks 2, stored by the laptop, seen by the phone.
        rooms = [BookmarkData(jid=JID.from_string(f'{name}@conference.{args.domain}'), name=name.title(), nick='alice', autojoin=True)
                 for name in ('garden', 'kitchen')]
        (yield laptop.module('NativeBookmarks').store_bookmarks(rooms)).finish()
        for room in rooms:
            yield phone.pubsub_event(f'the bookmark notification for {room.jid}',
                                     lambda e, jid=str(room.jid): e.node == Namespace.BOOKMARKS_1 and e.id == jid and not e.retracted)
        read = (yield phone.module('NativeBookmarks').request_bookmarks()).finish()
        if sorted(map(summary, read)) != sorted(map(summary, rooms)):
            raise Failure(f'phone: read {read!r}, expected {rooms!r}')
        print_result('bookmarks', bookmark_jids(read), phone.jid)

        (yield laptop.module('NativeBookmarks').retract_bookmark(rooms[0].jid)).finish()
        event = yield phone.pubsub_event('the bookmark retraction', lambda e: e.node == Namespace.BOOKMARKS_1 and e.retracted)
        print_result('retracted', event.id, phone.jid)
        read = (yield phone.module('NativeBookmarks').request_bookmarks()).finish()
        print_result('after_retract', bookmark_jids(read), phone.jid)

        task = yield stranger.module('PubSub').request_items(Namespace.BOOKMARKS_1, jid=owner)
        try:
            task.finish()
            raise Failure("stranger: read user1's bookmarks")
        except Failure:
            raise
        except Exception as err:
            print_result('stranger_bookmarks', getattr(err, 'condition', type(err).__name__), stranger.bare)
    return run


def main(argv):
    args = base_parser(__doc__, 30.0).parse_args(argv)
    configure_logging(args.debug)
    return Driver(args.timeout).run(scenario(args))


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
