"""Runs one fake-switches Arista switch answering eAPI over HTTP.

Usage: launch.py IP PORT SWITCH_NAME [PORTS]

PORTS is an optional comma list of interface names (default: the model's
Ethernet1,Ethernet2). Prints `ready` on stdout once listening.
"""
import sys

from twisted.internet import reactor

from fake_switches import switch_factory
from fake_switches.switch_configuration import Port
from fake_switches.transports.http_service import SwitchHttpService


def main():
    ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ports = None
    if len(sys.argv) > 4 and sys.argv[4]:
        ports = [Port(p) for p in sys.argv[4].split(",")]
    core = switch_factory.SwitchFactory().get("arista_generic", name, b"admin", ports=ports)
    SwitchHttpService(ip=ip, port=port, switch_core=core).hook_to_reactor(reactor)
    reactor.callWhenRunning(lambda: print("ready", flush=True))
    reactor.run()


if __name__ == "__main__":
    main()
