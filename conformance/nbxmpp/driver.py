"""What the nbxmpp interop scripts share: the nbxmpp import (exit status 3 when it is missing), a
GLib main loop driving a scenario written as a generator, and accounts logged in the way Gajim
logs in (nbxmpp.client.Client over STARTTLS, the test server's self-signed certificate accepted
through ignored TLS errors, entity capabilities on the initial presence).

A scenario is a generator function taking the Driver. It yields what it waits for:
- an nbxmpp Task (what an @iq_request_task method returns): it is resumed with a Done, whose
  finish() returns the task's result or raises its error;
- an Event: it is resumed with the event's value once set.
It fails by raising Failure (or any exception); the driver then prints "FAIL: ..." on stderr and
the process exits 1. When the generator returns, stdout gets "OK" and the exit status is 0.
"""

import argparse
import logging
import sys

try:
    import gi
    gi.require_version('Gio', '2.0')
    gi.require_version('GLib', '2.0')
    from gi.repository import Gio, GLib
    from nbxmpp.client import Client
    from nbxmpp.const import ConnectionProtocol, ConnectionType
    from nbxmpp.namespaces import Namespace
    from nbxmpp.protocol import Presence
    from nbxmpp.structs import DiscoIdentity, StanzaHandler
    from nbxmpp.task import Task
except (ImportError, ValueError) as err:  # pragma: no cover - reported to the caller
    print(f'FAIL: cannot import nbxmpp ({err}); install python3-nbxmpp and use /usr/bin/python3', file=sys.stderr)
    sys.exit(3)

__all__ = ['Account', 'Driver', 'Event', 'Failure', 'Namespace', 'StanzaHandler', 'base_parser', 'print_result']

CAPS_NODE = 'https://starling.test/nbxmpp-interop'


class Failure(Exception):
    """A failed check; its text is the FAIL line."""


def base_parser(doc, timeout):
    p = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True, help='the STARTTLS c2s port')
    p.add_argument('--domain', default='localhost')
    p.add_argument('--password', required=True)
    p.add_argument('--user1', default='alice')
    p.add_argument('--user2', default='bob')
    p.add_argument('--timeout', type=float, default=timeout, help='overall time limit in seconds')
    p.add_argument('--debug', action='store_true', help='nbxmpp debug logging (the XML exchanged) on stderr')
    return p


def print_result(key, value, user):
    print(f'RESULT {key}={value} user={user}', flush=True)


class Event:
    """Set once with a value; a scenario yielding it resumes then (at once if already set)."""

    def __init__(self, name):
        self.name = name
        self.is_set = False
        self.value = None
        self._waiter = None

    def set(self, value=True):
        if self.is_set:
            return
        self.is_set = True
        self.value = value
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter(value)

    def wait(self, resume):
        if self.is_set:
            resume(self.value)
        else:
            self._waiter = resume


class Done:
    """What a finished nbxmpp Task left: finish() returns its result or raises its error."""

    def __init__(self, task):
        if task is None:
            self.result, self.error = None, None
            return
        try:
            self.result, self.error = task.finish(), None
        except Exception as err:  # an nbxmpp StanzaError, a timeout, ...
            self.result, self.error = None, err

    def finish(self):
        if self.error is not None:
            raise self.error
        return self.result


class Driver:
    """Runs a scenario generator on a GLib main loop, with an overall time limit."""

    def __init__(self, timeout):
        self.loop = GLib.MainLoop()
        self.timeout = timeout
        self.status = None
        self.waiting_for = 'the start'
        self.accounts = []

    def run(self, scenario):
        self._gen = scenario(self)
        GLib.idle_add(self._resume_idle, None)
        GLib.timeout_add(int(self.timeout * 1000), self._on_timeout)
        self.loop.run()
        return self.status

    def _on_timeout(self):
        self.fail(f'timed out after {self.timeout} s waiting for {self.waiting_for}')
        return False

    def fail(self, message):
        if self.status is not None:
            return
        print(f'FAIL: {message}', file=sys.stderr, flush=True)
        self._finish(1)

    def _finish(self, status):
        self.status = status
        for account in self.accounts:
            account.close()
        # Let the stream closings go out before the loop stops.
        GLib.timeout_add(200, self._quit)

    def _quit(self):
        self.loop.quit()
        return False

    def _resume_idle(self, value):
        self._resume(value)
        return False

    def _later(self, value):
        GLib.idle_add(self._resume_idle, value)

    def _task_done(self, task):
        # The task forgets its result once its callbacks have run: keep it now.
        self._later(Done(task))

    def _resume(self, value):
        if self.status is not None:
            return
        try:
            waitable = self._gen.send(value)
        except StopIteration:
            print('OK', flush=True)
            self._finish(0)
            return
        except Failure as err:
            self.fail(str(err))
            return
        except Exception as err:  # an nbxmpp StanzaError from task.finish(), a bug in the script
            self.fail(f'{type(err).__name__}: {err}')
            return
        if isinstance(waitable, Task):
            self.waiting_for = f'an IQ task ({waitable!r})'
            if waitable.state.is_finished:
                # It finished without waiting for anything (store_bookmarks only sends its
                # publishes) and has forgotten its result already.
                self._later(Done(None))
            else:
                waitable.add_done_callback(self._task_done, weak=False)
        elif isinstance(waitable, Event):
            self.waiting_for = waitable.name
            waitable.wait(self._later)
        else:
            self.fail(f'the scenario yielded {waitable!r}')


class Account:
    """One nbxmpp Client (one resource), configured as Gajim configures it."""

    def __init__(self, driver, args, user, resource, notify=()):
        self.driver = driver
        self.bare = f'{user}@{args.domain}'
        self.connected = Event(f'{self.bare}/{resource} to log in')
        self.client = client = Client(log_context=f'{user}/{resource}')
        client.set_domain(args.domain)
        client.set_username(user)
        client.set_resource(resource)
        client.set_password(args.password)
        client.set_custom_host(f'{args.host}:{args.port}', ConnectionProtocol.TCP, ConnectionType.START_TLS)
        # What Gajim's "ignore TLS errors" settings amount to for a self-signed certificate.
        client.set_ignored_tls_errors({Gio.TlsCertificateFlags.UNKNOWN_CA, Gio.TlsCertificateFlags.BAD_IDENTITY})
        client.subscribe('connected', self._on_connected)
        client.subscribe('connection-failed', self._on_failed)
        client.subscribe('disconnected', self._on_disconnected)
        # Entity capabilities: the server learns the +notify features through disco#info.
        features = [Namespace.DISCO_INFO, Namespace.CAPS, *(f'{ns}+notify' for ns in notify)]
        client.get_module('EntityCaps').set_caps([DiscoIdentity(category='client', type='pc', name='nbxmpp interop')], features, CAPS_NODE)
        self.events = []
        self._watches = []
        client.register_handler(StanzaHandler(name='message', callback=self._on_pubsub_event, ns=Namespace.PUBSUB_EVENT, priority=60))
        self.closing = False
        driver.accounts.append(self)
        client.connect()

    @property
    def jid(self):
        return str(self.client.get_bound_jid())

    def module(self, name):
        return self.client.get_module(name)

    def _on_pubsub_event(self, _client, _stanza, properties):
        if not properties.is_pubsub_event:
            return
        self.events.append(properties.pubsub_event)
        for predicate, event in self._watches:
            if predicate(properties.pubsub_event):
                event.set(properties.pubsub_event)

    def pubsub_event(self, name, predicate):
        """An Event set with the first PubSubEventData received (or already received) that
        satisfies `predicate`; the modules' handlers (priority 16) have parsed its data."""
        event = Event(f'{self.bare}: {name}')
        for received in self.events:
            if predicate(received):
                event.set(received)
                return event
        self._watches.append((predicate, event))
        return event

    def _on_connected(self, client, _signal):
        caps = self.module('EntityCaps').caps
        presence = Presence()
        presence.addChild('c', namespace=Namespace.CAPS, attrs={'hash': caps.hash, 'node': caps.node, 'ver': caps.ver})
        client.send_stanza(presence)
        self.connected.set(True)

    def _on_failed(self, client, _signal):
        self.driver.fail(f'{self.bare}: connection failed: {client.get_error()}')

    def _on_disconnected(self, client, _signal):
        if not self.closing:
            self.driver.fail(f'{self.bare}: disconnected: {client.get_error()}')

    def close(self):
        if self.closing:
            return
        self.closing = True
        try:
            self.client.disconnect()
        except Exception:  # already gone
            pass


def configure_logging(debug):
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if debug else logging.WARNING,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
