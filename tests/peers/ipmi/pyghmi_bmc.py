"""pyghmi's fake BMC (pyghmi.cmd.fakebmc.FakeBmc, a real RMCP+ server) as a
Drydock test peer: bound to 127.0.0.1 on the given port, one user, with
the power cycle the stock fake lacks, its state (power, boot device) written
to a JSON file after every change so tests can read the peer's own view,
and an optional fault: the first N Get Chassis Status requests answered
"node busy" (completion code 0xC0).

Usage: python pyghmi_bmc.py PORT USER PASSWORD STATEFILE [BUSY_COUNT]

PORT 0 binds a port the kernel picks; either way the first line on stdout
is `listening PORT` with the port bound, written once the socket is bound.
"""

import json
import os
import sys

from pyghmi.cmd.fakebmc import FakeBmc


class DrydockBmc(FakeBmc):
    def __init__(self, authdata, port, statefile, busy):
        # FakeBmc binds every address; bind loopback only.
        super(FakeBmc, self).__init__(authdata, port=port, address='127.0.0.1')
        # pyghmi keys its sessions by `self.port`: the port really bound
        # (port 0 asks the kernel for one).
        self.port = self.serversocket.getsockname()[1]
        self.powerstate = 'off'
        self.bootdevice = 'default'
        self.statefile = statefile
        self.busy = busy
        self.save()

    def save(self):
        tmp = self.statefile + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({'power': self.powerstate, 'boot': self.bootdevice}, f)
        os.replace(tmp, self.statefile)

    def set_boot_device(self, bootdevice):
        super().set_boot_device(bootdevice)
        self.save()

    def power_off(self):
        self.powerstate = 'off'
        self.save()

    def power_on(self):
        self.powerstate = 'on'
        self.save()

    def power_shutdown(self):
        self.powerstate = 'off'
        self.save()

    def power_cycle(self):
        # Off then on at once: the fake has no machine behind it.
        self.powerstate = 'on'
        self.save()

    def get_chassis_status(self, session):
        if self.busy > 0:
            self.busy -= 1
            return session.send_ipmi_response(code=0xC0)
        return super().get_chassis_status(session)


def main():
    port, user, password, statefile = sys.argv[1:5]
    busy = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    bmc = DrydockBmc({user: password}, int(port), statefile, busy)
    print('listening %d' % bmc.port, flush=True)
    # The reader stops after that line: anything printed later goes to the
    # log (stderr) instead of a pipe nobody reads.
    os.dup2(2, 1)
    bmc.listen()


if __name__ == '__main__':
    sys.exit(main())
