"""Runs one fake-switches Arista switch answering eAPI over HTTP.

Usage: launch.py IP PORT SWITCH_NAME [PORTS] [USER:PASSWORD] [plain]

PORT 0 picks a free port. PORTS is an optional comma list of interface
names (empty or omitted: the model's Ethernet1,Ethernet2). USER:PASSWORD puts
HTTP basic auth (Twisted's own guard) in front of the eAPI, as EOS's web
server does; the model itself has no auth. Prints `ready <port>` on stdout
once listening, then `eapi <request>` for every eAPI request received.

fake-switches 1.5.0's Arista model only knows trunk ports with native VLAN 1.
Unless the last argument is `plain`, `extend_model` adds what EOS does and
the model lacks (a fake layer, written from Arista's EOS manual, "Ethernet
Ports / Switchport"): `switchport mode access`, `switchport access vlan N`,
`switchport trunk native vlan N`, their `no` forms, and `show interfaces
switchport` reporting the access and native VLANs set.
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


def extend_model():
    """Teaches the Arista model access ports and native VLANs (see above)."""
    from fake_switches.arista.command_processor import config_interface, default
    from fake_switches.arista.command_processor.config_interface import ConfigInterfaceCommandProcessor as Cip

    is_cmd = config_interface._is_cmd
    plain_switchport = Cip.do_switchport
    plain_no_switchport = Cip.do_no_switchport

    def vlan_number(self, word):
        try:
            return self.read_vlan_number(word)
        except Exception:
            self.display.invalid_command(self, "Invalid input")
            return None

    def do_switchport(self, *args):
        if len(args) == 2 and is_cmd(args, "mode") and "access".startswith(args[1].lower()):
            self.port.mode = "access"
            return
        if len(args) == 3 and is_cmd(args, "access", "vlan"):
            number = vlan_number(self, args[2])
            if number is not None:
                self.port.access_vlan = number
            return
        if len(args) == 4 and is_cmd(args, "trunk", "native", "vlan"):
            number = vlan_number(self, args[3])
            if number is not None:
                self.port.trunk_native_vlan = number
            return
        return plain_switchport(self, *args)

    def do_no_switchport(self, *args):
        if len(args) >= 2 and is_cmd(args, "access", "vlan"):
            self.port.access_vlan = None
            return
        if len(args) >= 3 and is_cmd(args, "trunk", "native", "vlan"):
            self.port.trunk_native_vlan = None
            return
        return plain_no_switchport(self, *args)

    Cip.do_switchport = do_switchport
    Cip.do_no_switchport = do_no_switchport

    plain_json = default._to_switchport_json

    def to_switchport_json(ports):
        ports = list(ports)  # the model passes a one-shot filter
        answer = plain_json(ports)
        for port in ports:
            info = answer["switchports"][port.name]["switchportInfo"]
            for key, number in (("access", port.access_vlan), ("trunkingNative", port.trunk_native_vlan)):
                number = number or 1
                info[key + "VlanId"] = number
                info[key + "VlanName"] = "default" if number == 1 else "VLAN{:04d}".format(number)
        return answer

    default._to_switchport_json = to_switchport_json


def main():
    ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if not (len(sys.argv) > 6 and sys.argv[6] == "plain"):
        extend_model()
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
