"""Runs one fake-switches Arista switch answering eAPI over HTTP.

Usage: launch.py IP PORT SWITCH_NAME [PORTS] [USER:PASSWORD]

PORT 0 picks a free port. PORTS is an optional comma list of interface
names (empty or omitted: the model's Ethernet1,Ethernet2). USER:PASSWORD puts
HTTP basic auth (Twisted's own guard) in front of the eAPI, as EOS's web
server does; the model itself has no auth. Prints `ready <port>` on stdout
once listening, then `eapi <request>` for every eAPI request received.
"""
import logging
import sys

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.web.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from twisted.web.resource import IResource
from twisted.web.server import Site
from zope.interface import implementer

from fake_switches import switch_factory
from fake_switches.switch_configuration import Port


class Echo(logging.Handler):
    """Prints each request the eAPI logs, for tests to count."""

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Request in: "):
            print("eapi", message[len("Request in: "):], flush=True)


@implementer(IRealm)
class SwitchRealm:
    def __init__(self, resource):
        self.resource = resource

    def requestAvatar(self, avatar_id, mind, *interfaces):
        if IResource in interfaces:
            return IResource, self.resource, lambda: None
        raise NotImplementedError()


def main():
    ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ports = None
    if len(sys.argv) > 4 and sys.argv[4]:
        ports = [Port(p) for p in sys.argv[4].split(",")]
    core = switch_factory.SwitchFactory().get("arista_generic", name, b"admin", ports=ports)
    eapi_log = logging.getLogger("fake_switches.arista.{}.eapi".format(name))
    eapi_log.setLevel(logging.INFO)
    eapi_log.addHandler(Echo())
    eapi_log.propagate = False
    resource = core.get_http_resource()
    if len(sys.argv) > 5 and sys.argv[5]:
        user, password = sys.argv[5].split(":", 1)
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{user: password.encode()})
        portal = Portal(SwitchRealm(resource), [checker])
        resource = HTTPAuthSessionWrapper(portal, [BasicCredentialFactory(name.encode())])
    listening = reactor.listenTCP(port, Site(resource), interface=ip)
    reactor.callWhenRunning(lambda: print("ready", listening.getHost().port, flush=True))
    reactor.run()


if __name__ == "__main__":
    main()
