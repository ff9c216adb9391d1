#!/usr/bin/python3
"""Gajim's "Execute Command" path against Starling: nbxmpp's AdHoc module (the one Gajim uses)
lists the server's commands, runs get-online-users-num (completed at once) and add-user (a form,
filled in and submitted as Gajim does). Then, as a second user, lists the commands again (none)
and is refused get-online-users-num with forbidden.

Prints `RESULT key=value user=jid` lines, then OK; a failure prints FAIL: ... on stderr and
exits 1. Run by adhoc.test.ts.
"""
import argparse
import logging
import sys

import gi

gi.require_version('GLib', '2.0')
from gi.repository import GLib  # noqa: E402

from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import AdHocAction, ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.errors import StanzaError  # noqa: E402
from nbxmpp.modules import dataforms  # noqa: E402
from nbxmpp.protocol import JID  # noqa: E402
from nbxmpp.structs import AdHocCommand  # noqa: E402

ADMIN = 'http://jabber.org/protocol/admin#'


class Scenario:
    def __init__(self, args, loop):
        self.args = args
        self.loop = loop
        self.failed = None
        self.server = JID.from_string(args.domain)

    def fail(self, message):
        self.failed = message
        self.loop.quit()

    def connect(self, user, on_connected):
        client = Client()
        client.set_domain(self.args.domain)
        client.set_username(user)
        client.set_password(self.args.password)
        client.set_resource('gajim')
        client.set_custom_host(f'127.0.0.1:{self.args.port}', ConnectionProtocol.TCP, ConnectionType.START_TLS)
        client.set_ignore_tls_errors(True)
        client.subscribe('connected', lambda *_: on_connected(client))
        client.subscribe('connection-failed', lambda *_: self.fail(f'{user} could not connect'))
        client.connect()
        return client

    def result(self, client, key, value):
        print(f'RESULT {key}={value} user={client.get_bound_jid().bare}', flush=True)

    # --- the admin ----------------------------------------------------------------------

    def admin_connected(self, client):
        self.admin = client
        client.get_module('AdHoc').request_command_list(jid=self.server, callback=self.admin_listed)

    def admin_listed(self, task):
        try:
            commands = task.finish()
        except StanzaError as error:
            return self.fail(f'command list: {error}')
        nodes = sorted(c.node for c in commands)
        self.result(self.admin, 'commands', len(nodes))
        self.result(self.admin, 'listed', ','.join(n[len(ADMIN):] for n in nodes if n.startswith(ADMIN)))
        by_node = {c.node: c for c in commands}
        online = by_node.get(ADMIN + 'get-online-users-num')
        if online is None:
            return self.fail('get-online-users-num is not listed')
        self.add_user = by_node.get(ADMIN + 'add-user')
        self.admin.get_module('AdHoc').execute_command(online, callback=self.online_counted)

    def online_counted(self, task):
        try:
            command = task.finish()
        except StanzaError as error:
            return self.fail(f'get-online-users-num: {error}')
        if not command.is_completed:
            return self.fail(f'get-online-users-num: status {command.status}')
        form = dataforms.extend_form(node=command.data)
        self.result(self.admin, 'onlineusersnum', form['onlineusersnum'].value)
        self.admin.get_module('AdHoc').execute_command(self.add_user, callback=self.add_user_form)

    def add_user_form(self, task):
        try:
            command = task.finish()
        except StanzaError as error:
            return self.fail(f'add-user: {error}')
        if command.status.value != 'executing' or command.data is None:
            return self.fail(f'add-user: expected a form, got status {command.status}')
        self.result(self.admin, 'add_user_actions', ','.join(sorted(a.value for a in command.actions)))
        # As Gajim's data form widget does: fill in the fields, submit the purged form.
        form = dataforms.extend_form(node=command.data)
        form['accountjid'].value = f'{self.args.new_user}@{self.args.domain}'
        form['password'].value = self.args.new_password
        form['password-verify'].value = self.args.new_password
        form.type_ = 'submit'
        self.admin.get_module('AdHoc').execute_command(command, action=command.default or AdHocAction.COMPLETE, dataform=form.get_purged(), callback=self.user_added)

    def user_added(self, task):
        try:
            command = task.finish()
        except StanzaError as error:
            return self.fail(f'add-user submission: {error}')
        self.result(self.admin, 'add_user', command.status.value)
        self.result(self.admin, 'add_user_note', command.notes[0].type.value if command.notes else 'none')
        self.connect(self.args.user2, self.user_connected)

    # --- someone who is not an admin ------------------------------------------------------

    def user_connected(self, client):
        self.user = client
        client.get_module('AdHoc').request_command_list(jid=self.server, callback=self.user_listed)

    def user_listed(self, task):
        try:
            commands = task.finish()
        except StanzaError as error:
            return self.fail(f'command list of a non-admin: {error}')
        self.result(self.user, 'commands', len(commands))
        command = AdHocCommand(jid=self.server, node=ADMIN + 'get-online-users-num', name=None)
        self.user.get_module('AdHoc').execute_command(command, callback=self.user_refused)

    def user_refused(self, task):
        try:
            task.finish()
            self.result(self.user, 'refused', 'no')
        except StanzaError as error:
            self.result(self.user, 'refused', error.condition)
        print('OK', flush=True)
        self.loop.quit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--domain', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--admin', required=True)
    parser.add_argument('--user2', required=True)
    parser.add_argument('--new-user', required=True)
    parser.add_argument('--new-password', required=True)
    parser.add_argument('--timeout', type=int, default=30)
    parser.add_argument('--debug', action='store_true')
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)

    loop = GLib.MainLoop()
    scenario = Scenario(args, loop)
    GLib.timeout_add_seconds(args.timeout, lambda: scenario.fail(f'timed out after {args.timeout} s') or False)
    scenario.connect(args.admin, scenario.admin_connected)
    loop.run()
    if scenario.failed:
        print(f'FAIL: {scenario.failed}', file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == '__main__':
    main()
