#!/usr/bin/env python3
"""Craft PTPv2 frames and send them on an interface through an AF_PACKET raw socket.

Used by the end-to-end test to play a foreign client (a Delay_Req arriving on the upstream side)
or a rogue master (Sync/Announce arriving on a downstream segment). Standard library only.

  ptpframe.py --iface eth0 --type sync --transport l2 --src-mac 02:00:0b:00:00:bb \
              --clock-id 02000b.fffe.0000bb --count 5
  ptpframe.py ... --pcap out.pcap      # write the frames to a pcap file instead of sending
  ptpframe.py ... --count 40000 --rate 2000   # paced against the clock: 2000 frames/s for 20 s

Transports: l2 (EtherType 0x88F7 to 01:1b:19:00:00:00) and udp4 (224.0.1.129, event port 319 for
Sync/Delay_Req, general port 320 for Announce; valid IPv4 and UDP checksums).
"""

import argparse
import socket
import struct
import sys
import time

ETH_P_1588 = 0x88F7
ETH_P_IP = 0x0800
L2_DST = bytes.fromhex("011b19000000")
UDP4_DST_MAC = bytes.fromhex("01005e000181")
UDP4_GROUP = "224.0.1.129"

# messageType, controlField, event message (UDP port 319) or general (320)
TYPES = {
    "sync": (0x0, 0, True),
    "delay_req": (0x1, 1, True),
    "announce": (0xB, 5, False),
}


def parse_mac(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"bad MAC {text!r}")
    return bytes(int(p, 16) for p in parts)


def parse_clock_id(text):
    """Accept 020000.fffe.000101, 020000fffe000101 or 0x020000fffe000101."""
    digits = text.lower().removeprefix("0x").replace(".", "").replace(":", "")
    if len(digits) != 16:
        raise argparse.ArgumentTypeError(f"bad clockIdentity {text!r}")
    return bytes.fromhex(digits)


def checksum16(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ptp_message(kind, clock_id, port_number, seq, domain, log_interval):
    msg_type, control, _event = TYPES[kind]
    now = time.time()
    secs, nsecs = int(now), int((now % 1) * 1e9)
    timestamp = struct.pack("!HIL", secs >> 32, secs & 0xFFFFFFFF, nsecs)
    if kind == "announce":
        body = timestamp + struct.pack(
            "!hBBBBHB8sHB",
            37,  # currentUtcOffset
            0,  # reserved
            255,  # grandmasterPriority1: the worst, so no ptp4l ever elects it
            248,  # clockClass: default, not synchronised
            0xFE,  # clockAccuracy: unknown
            0xFFFF,  # offsetScaledLogVariance
            255,  # grandmasterPriority2
            clock_id,  # grandmasterIdentity
            0,  # stepsRemoved
            0xA0,  # timeSource: internal oscillator
        )
    else:
        body = timestamp
    length = 34 + len(body)
    flags = 0x0200 if kind == "sync" else 0x0000  # two-step Sync (no Follow_Up will come)
    if kind == "delay_req":
        log_interval = 0x7F
    header = struct.pack(
        "!BBHBBHq4s8sHHBb",
        msg_type,  # transportSpecific 0
        2,  # versionPTP
        length,
        domain,
        0,
        flags,
        0,  # correctionField
        b"\0" * 4,
        clock_id,
        port_number,
        seq & 0xFFFF,
        control,
        log_interval if log_interval < 0x80 else log_interval - 0x100,
    )
    return header + body


def udp4_frame(src_mac, src_ip, payload, event):
    port = 319 if event else 320
    src = socket.inet_aton(src_ip)
    dst = socket.inet_aton(UDP4_GROUP)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", port, port, udp_len, 0) + payload
    csum = checksum16(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 1, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum16(ip)) + ip[12:]
    return UDP4_DST_MAC + src_mac + struct.pack("!H", ETH_P_IP) + ip + udp


def build_frame(args, seq):
    payload = ptp_message(args.type, args.clock_id, args.port_number, seq, args.domain, args.log_interval)
    if args.transport == "l2":
        return L2_DST + args.src_mac + struct.pack("!H", ETH_P_1588) + payload
    return udp4_frame(args.src_mac, args.src_ip, payload, TYPES[args.type][2])


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for frame in frames:
            now = time.time()
            out.write(struct.pack("<IIII", int(now), int((now % 1) * 1e6), len(frame), len(frame)))
            out.write(frame)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iface", help="interface to send on (required unless --pcap)")
    parser.add_argument("--type", choices=sorted(TYPES), required=True)
    parser.add_argument("--transport", choices=["l2", "udp4"], default="l2")
    parser.add_argument("--src-mac", type=parse_mac, required=True)
    parser.add_argument("--src-ip", default="10.98.0.250", help="IPv4 source for udp4")
    parser.add_argument("--clock-id", type=parse_clock_id, required=True)
    parser.add_argument("--port-number", type=int, default=1)
    parser.add_argument("--seq", type=int, default=1, help="first sequenceId (incremented per frame)")
    parser.add_argument("--domain", type=int, default=0)
    parser.add_argument("--log-interval", type=int, default=-3, help="logMessageInterval (Sync/Announce)")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between frames")
    parser.add_argument(
        "--rate", type=float, help="frames per second, paced against the clock (instead of --interval)"
    )
    parser.add_argument("--pcap", help="write frames to this pcap file instead of sending")
    args = parser.parse_args()
    if not 1 <= args.count <= 100000:
        parser.error("--count must be 1..100000")
    if args.rate is not None and not 1 <= args.rate <= 10000:
        parser.error("--rate must be 1..10000")

    frames = [build_frame(args, args.seq + i) for i in range(args.count)]
    if args.pcap:
        write_pcap(args.pcap, frames)
    else:
        if not args.iface:
            parser.error("--iface is required unless --pcap is given")
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((args.iface, 0))
            start = time.monotonic()
            for i, frame in enumerate(frames):
                if args.rate is not None:
                    # Frame i leaves at start + i / rate: a late frame does not slow the rest.
                    wait = start + i / args.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                elif i:
                    time.sleep(args.interval)
                sock.send(frame)
    where = args.pcap or args.iface
    print(f"ptpframe: {len(frames)} x {args.type} ({args.transport}) -> {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
