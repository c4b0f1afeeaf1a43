#!/usr/bin/env python3
"""Switch an interface's transmit checksum offload on or off (like `ethtool -K IFACE tx off`).

  txcsum.py IFACE off|on|show

Why: a veth sends UDP with the checksum left to "hardware" (CHECKSUM_PARTIAL); the peer's kernel
trusts it, but an AF_PACKET/pcap relay on the peer captures the frame with an unfinished checksum
and, forwarding it as is, hands the next host a frame its kernel drops as corrupt. A real NIC always
puts a complete checksum on the wire; `off` on the sending veth gives the same. Standard library only
(SIOCETHTOOL ioctl, ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM).
"""

import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


def ethtool_value(sock, iface, cmd, data=0):
    value = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifreq = struct.pack("16sP", iface.encode()[:15], ctypes.addressof(value)).ljust(40, b"\0")
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("II", value.raw[:8])[1]


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("on", "off", "show"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    iface, action = sys.argv[1], sys.argv[2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if action != "show":
            ethtool_value(sock, iface, ETHTOOL_STXCSUM, 1 if action == "on" else 0)
        state = ethtool_value(sock, iface, ETHTOOL_GTXCSUM)
    print(f"{iface}: tx checksum offload {'on' if state else 'off'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
