#!/usr/bin/env python3
"""Host side of the QEMU smoke test (python3 standard library only).

    host.py ports N
        print N free UDP ports on 127.0.0.1 (for the netdevs: N/2 for QEMU, N/2 for us)
    host.py run --host-ports U,D1,D2 --guest-ports U,D1,D2 --console LOG --console-in FIFO
                --t0 EPOCH --deadline EPOCH [--armv7] [--results FILE]
        drive the guest that tests/qemu/run.sh started and check what it does

The guest's three virtio NICs are QEMU `-netdev dgram` sockets on 127.0.0.1: one UDP datagram is
one raw Ethernet frame (no FCS). We own the other end of each: eth0 (upstream, towards the
grandmaster) and lan1, lan2 (downstream, towards the clients). We send real PTPv2 frames (L2:
01-1B-19-00-00-00, EtherType 0x88F7, padded to the 60-byte minimum a wire carries; one UDPv4
Sync to 224.0.1.129:319) and check where ptpproxy relays them:

  the first frame into each port after start     -> relayed like any other
  Sync, Follow_Up, Announce from upstream         -> lan1 and lan2, byte for byte
  UDPv4 Sync, 358-byte Signaling from upstream    -> lan1 and lan2, byte for byte
  Delay_Req of client A on lan1 (B on lan2)       -> upstream only
  Management GET of client A on lan1              -> upstream only
  Delay_Resp for A (B) from upstream              -> lan1 (lan2) only: requestingPortIdentity
  Delay_Resp for a client never seen              -> nowhere (dropped unknown_client)
  Delay_Req arriving on upstream                  -> nowhere (dropped delay_req_from_upstream)
  Sync from a downstream port (rogue master)      -> nowhere (dropped rogue_master)

Last, the bridge phase (BridgePhase; --no-bridge skips it): the guest puts eth0, lan1 and lan2 in
a Linux bridge br0 and ptpproxy relays on the members, once with "bridge_ports": "leave" (the
bridge forwards each PTP frame besides ptpproxy: two copies) and once with "bridge_filter": "tc"
(tc flower trap filters on each member's ingress: one copy, ptpproxy's), then with ptpproxy
stopped (the bridge forwards PTP again: the filters are gone).

"Nowhere" is proven with a sentinel: each step is followed by a frame from the same ingress port
that must be relayed (ptpproxy handles one port's frames in order), then a short grace period;
every port must then have received exactly the frames expected, no more, no fewer.

The guest's console is QEMU's stdout (LOG, which we tail) and stdin (FIFO, where we write one-line
commands for the guest's /init). We wait for `@@ptpq ready`, run the steps while keeping a model
of every counter ptpproxy should have, ask for `report` and compare `ptpproxy status` and the
syslog lines it prints with the model, and finally send `poweroff`. With --armv7 the same steps
run a second time against the armv7 (lan966x) binary: its per-port rx counters, forwarded counters
and byte-identical forwarded frames prove it read pcap's caplen right (the 32/64-bit time_t trap
of TOOLCHAIN.md garbles caplen, which shows up as wrong lengths, parse drops or no frames).
"""

import argparse
import collections
import json
import os
import re
import select
import socket
import sys
import time

PTP_L2_DST = bytes.fromhex("011b19000000")
PTP_ETHERTYPE = 0x88F7
PTP_V4_DST_MAC = bytes.fromhex("01005e000181")
PORTS = ("eth0", "lan1", "lan2")  # index 0 is upstream, as in the shipped config
U, D1, D2 = 0, 1, 2

GM_MAC = bytes.fromhex("020000000001")  # the grandmaster, behind upstream
A_MAC = bytes.fromhex("020000000101")  # client A, on lan1
B_MAC = bytes.fromhex("020000000201")  # client B, on lan2
C_MAC = bytes.fromhex("020000000301")  # another relay's client, behind upstream
X_MAC = bytes.fromhex("020000000901")  # a client ptpproxy never saw


def clock_identity(mac):
    """EUI-64 from a MAC, the way ptp4l derives its clockIdentity."""
    return mac[:3] + b"\xff\xfe" + mac[3:]


def port_identity(mac, port=1):
    return clock_identity(mac) + port.to_bytes(2, "big")


def identity_text(mac, port=1):
    c = clock_identity(mac)
    return f"{c[:3].hex()}.{c[3:5].hex()}.{c[5:].hex()}-{port}"


def timestamp(sec, ns):
    return sec.to_bytes(6, "big") + ns.to_bytes(4, "big")


def ptp_message(mtype, control, length, seq, source, body, flags=0, log_interval=0, domain=0):
    """IEEE 1588-2019 13.3 common header (34 bytes) + body."""
    h = bytearray(34)
    h[0] = mtype  # transportSpecific/majorSdoId 0
    h[1] = 0x02  # versionPTP 2
    h[2:4] = length.to_bytes(2, "big")
    h[4] = domain
    h[6:8] = flags.to_bytes(2, "big")
    h[20:30] = source
    h[30:32] = seq.to_bytes(2, "big")
    h[32] = control
    h[33] = log_interval & 0xFF
    msg = bytes(h) + body
    assert len(msg) == length, (mtype, len(msg), length)
    return msg


def sync(seq, ts=(1_700_000_000, 0)):
    # two-step (flagField twoStepFlag): the time comes in the Follow_Up
    return ptp_message(0x0, 0, 44, seq, port_identity(GM_MAC), timestamp(*ts), flags=0x0200)


def follow_up(seq, ts=(1_700_000_000, 123_456_789)):
    return ptp_message(0x8, 2, 44, seq, port_identity(GM_MAC), timestamp(*ts))


def announce(seq):
    body = (
        timestamp(0, 0)
        + (37).to_bytes(2, "big")  # currentUtcOffset
        + b"\x00"
        + bytes([128])  # grandmasterPriority1
        + bytes([248, 0xFE]) + (0xFFFF).to_bytes(2, "big")  # grandmasterClockQuality
        + bytes([128])  # grandmasterPriority2
        + clock_identity(GM_MAC)
        + (0).to_bytes(2, "big")  # stepsRemoved
        + bytes([0xA0])  # timeSource: internal oscillator
    )
    return ptp_message(0xB, 5, 64, seq, port_identity(GM_MAC), body, log_interval=1)


def delay_req(seq, mac):
    return ptp_message(0x1, 1, 44, seq, port_identity(mac), timestamp(0, 0), log_interval=0x7F)


def delay_resp(seq, requesting_mac, ts=(1_700_000_001, 5_000)):
    body = timestamp(*ts) + port_identity(requesting_mac)
    msg = ptp_message(0x9, 3, 54, seq, port_identity(GM_MAC), body)
    assert msg[44:54] == port_identity(requesting_mac)  # requestingPortIdentity at offset 44
    return msg


def signaling(seq, data_len=290):
    """Signaling (13.12) to all ports with one organization-extension TLV of data_len bytes: a
    long frame (358 bytes on the wire by default), to check lengths beyond the minimal ones."""
    tlv_value = bytes.fromhex("0080c2") + bytes.fromhex("000001") + bytes(i & 0xFF for i in range(data_len))
    tlv = (0x0003).to_bytes(2, "big") + len(tlv_value).to_bytes(2, "big") + tlv_value
    body = b"\xff" * 10 + tlv  # targetPortIdentity: all ports
    return ptp_message(0xC, 5, 34 + len(body), seq, port_identity(GM_MAC), body, log_interval=0x7F)


def management_get(seq, mac):
    """Management GET of DEFAULT_DATA_SET (15.4), as `pmc` sends it from a client."""
    tlv = (0x0001).to_bytes(2, "big") + (2).to_bytes(2, "big") + (0x2000).to_bytes(2, "big")
    body = b"\xff" * 10 + bytes([1, 1, 0, 0]) + tlv
    return ptp_message(0xD, 4, 34 + len(body), seq, port_identity(mac), body, log_interval=0x7F)


def l2(src_mac, msg):
    """Ethernet frame, padded to the 60-byte minimum (without FCS) as it arrives off a wire."""
    frame = PTP_L2_DST + src_mac + PTP_ETHERTYPE.to_bytes(2, "big") + msg
    return frame + b"\0" * max(0, 60 - len(frame))


def tagged(frame, vid):
    """`frame` under one 802.1Q tag (priority 0, VLAN `vid`), as a trunk port carries it."""
    return frame[:12] + b"\x81\x00" + vid.to_bytes(2, "big") + frame[12:]


def udp4(src_mac, src_ip, msg, dport=319):
    """PTP over UDPv4 to 224.0.1.129 (IEEE 1588 Annex C), with a valid IPv4 header checksum."""
    udp = (dport).to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(msg)).to_bytes(2, "big")
    udp += b"\0\0" + msg  # UDP checksum 0: none (allowed on IPv4)
    ip = bytearray(20)
    ip[0] = 0x45
    ip[2:4] = (20 + len(udp)).to_bytes(2, "big")
    ip[6] = 0x40  # DF
    ip[8] = 1  # TTL 1, as PTP event messages are sent
    ip[9] = 17
    ip[12:16] = bytes(src_ip)
    ip[16:20] = bytes([224, 0, 1, 129])
    s = sum(int.from_bytes(ip[i : i + 2], "big") for i in range(0, 20, 2))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    return PTP_V4_DST_MAC + src_mac + b"\x08\x00" + bytes(ip) + udp


def is_ptp(frame):
    if len(frame) < 14:
        return False
    et = int.from_bytes(frame[12:14], "big")
    if et == 0x8100 and len(frame) >= 18:
        et = int.from_bytes(frame[16:18], "big")
    if et == PTP_ETHERTYPE:
        return True
    if et == 0x0800 and len(frame) >= 14 + 28 and frame[14 + 9] == 17:
        ihl = (frame[14] & 0x0F) * 4
        dport = int.from_bytes(frame[14 + ihl + 2 : 14 + ihl + 4], "big")
        return dport in (319, 320)
    return False


def correction_field(frame):
    """Where a PTP frame's correctionField is (IEEE 1588 13.3.2.9: 8 bytes at header offset 8),
    and where its UDP checksum is (None for L2): (correction offset, checksum offset)."""
    if frame[12:14] == b"\x88\xf7":
        return 14 + 8, None
    ihl = (frame[14] & 0x0F) * 4
    return 14 + ihl + 8 + 8, 14 + ihl + 6


def without_correction(frame):
    """`frame` with its correctionField (and a UDP checksum covering it) zeroed: what ptpproxy's
    residence correction may change."""
    if len(frame) < 14 + 28 + 16:
        return frame  # too short to hold one: compared as it is
    c, u = correction_field(frame)
    f = bytearray(frame)
    f[c : c + 8] = bytes(8)
    if u is not None:
        f[u : u + 2] = bytes(2)
    return bytes(f)


def added_correction_ns(sent, got):
    """The correction ptpproxy added to `got` over `sent`, nanoseconds."""
    if len(sent) < 14 + 28 + 16:
        return 0
    c, _ = correction_field(sent)

    def field(f):
        return int.from_bytes(f[c : c + 8], "big", signed=True)

    return (field(got) - field(sent)) / 65536


def describe(frame):
    """Short human description of a PTP frame, for failure messages."""
    names = {0: "Sync", 1: "Delay_Req", 8: "Follow_Up", 9: "Delay_Resp", 0xB: "Announce",
             0xC: "Signaling", 0xD: "Management"}
    off = 14 if frame[12:14] == b"\x88\xf7" else 14 + 28
    if len(frame) < off + 34:
        return f"{len(frame)}-byte frame {frame[:20].hex()}"
    t = frame[off] & 0x0F
    seq = int.from_bytes(frame[off + 30 : off + 32], "big")
    return f"{names.get(t, hex(t))} seq {seq} from {frame[6:12].hex(':')} ({len(frame)} bytes)"


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


class Console:
    """The guest console: tail QEMU's stdout file, write commands into its stdin FIFO."""

    def __init__(self, log_path, fifo_path, deadline, qemu_pid=None):
        self.log_path = log_path
        self.fifo_path = fifo_path
        self.deadline = deadline
        self.qemu_pid = qemu_pid
        self.buf = b""
        self.lines = []
        self.offset = 0

    def poll(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        self.buf += data
        *complete, self.buf = self.buf.split(b"\n")
        for raw in complete:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\r"))

    def mark(self):
        self.poll()
        return len(self.lines)

    def wait(self, pattern, since=0, timeout=60.0):
        """First line at index >= since matching the regex: (index, match) or (None, None)."""
        rx = re.compile(pattern)
        end = min(time.time() + timeout, self.deadline)
        i = since
        while True:
            self.poll()
            while i < len(self.lines):
                m = rx.search(self.lines[i])
                if m:
                    return i, m
                i += 1
            if time.time() >= end or not self.qemu_alive():
                self.poll()
                return None, None
            time.sleep(0.05)

    def qemu_alive(self):
        if self.qemu_pid is None:
            return True
        try:
            os.kill(self.qemu_pid, 0)
        except ProcessLookupError:
            return False
        return True

    def send(self, command):
        print(f"--> guest: {command}", flush=True)
        fd = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, command.encode() + b"\n")
        finally:
            os.close(fd)

    def block(self, begin, end_index):
        """The lines between a '@@ptpq X-begin' line and end_index."""
        return self.lines[begin + 1 : end_index]


class Net:
    """The host ends of the three netdevs."""

    def __init__(self, host_ports, guest_ports):
        self.socks = []
        self.peers = []
        for hp, gp in zip(host_ports, guest_ports):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", hp))
            s.setblocking(False)
            self.socks.append(s)
            self.peers.append(("127.0.0.1", gp))
        self.noise = collections.Counter()  # non-PTP frames from the guest, per port
        self.sent = [0, 0, 0]  # frames we sent into each NIC, all phases
        self.received = [0, 0, 0]  # frames (any) that came out of each NIC, all phases

    def send(self, port, frame):
        self.socks[port].sendto(frame, self.peers[port])
        self.sent[port] += 1

    def receive(self, until):
        """PTP frames (port, bytes) that arrive before `until` (epoch seconds)."""
        got = []
        while True:
            left = until - time.time()
            if left <= 0:
                return got
            ready, _, _ = select.select(self.socks, [], [], left)
            for s in ready:
                port = self.socks.index(s)
                while True:
                    try:
                        frame = s.recv(65536)
                    except BlockingIOError:
                        break
                    self.received[port] += 1
                    if is_ptp(frame):
                        got.append((port, frame))
                    else:
                        self.noise[PORTS[port]] += 1
            if not ready:
                return got

    def exchange(self, expected, timeout, grace):
        """Collect frames until every (port, frame) of `expected` arrived (or timeout), then
        `grace` seconds more. Returns (missing, extra) as lists of (port, frame).

        Frames are compared without their correctionField (and a UDP checksum over it): the
        shipped configuration corrects residence (Follow_Up, Delay_Resp, one-step Sync carry it),
        so a relayed frame matches if it is the sent one but for a correction of 0 to 1 s added
        there; any other change makes it unexpected."""
        sent = {(p, without_correction(f)): f for p, f in expected}
        want = collections.Counter((p, without_correction(f)) for p, f in expected)
        got = collections.Counter()
        bad = []

        def take(items):
            for port, frame in items:
                key = (port, without_correction(frame))
                if key in sent and not 0 <= added_correction_ns(sent[key], frame) < 1e9:
                    bad.append((port, frame))
                    continue
                got[key] += 1

        end = time.time() + timeout
        while time.time() < end and any(got[k] < n for k, n in want.items()):
            take(self.receive(min(end, time.time() + 0.05)))
        take(self.receive(time.time() + grace))
        missing = [(p, sent[(p, f)]) for p, f in (want - got).elements()]
        return missing, list((got - want).elements()) + bad

    def drain(self):
        self.receive(time.time() + 0.05)


class Model:
    """Every counter ptpproxy should show, updated as frames are sent."""

    def __init__(self):
        self.rx = [0, 0, 0]
        self.tx = [0, 0, 0]
        self.forwarded = collections.Counter()
        self.steered = 0
        self.dropped = collections.Counter()
        self.clients = {}  # identity text -> [port name, mac text, delay_req count]

    def account(self, ingress, kind, to, drop=None, client=None):
        self.rx[ingress] += 1
        for p in to:
            self.tx[p] += 1
        if to:
            self.forwarded[kind] += 1
        if drop:
            self.dropped[drop] += 1
        if kind == "delay_resp" and to:
            self.steered += 1
        if client is not None and to:
            ident = identity_text(client)
            entry = self.clients.setdefault(ident, [PORTS[ingress], client.hex(":"), 0])
            entry[2] += 1


class Phase:
    """One ptpproxy process in the guest: the relay steps, then its report."""

    def __init__(self, name, board, console, net, results, deadline):
        self.name = name
        self.board = board
        self.console = console
        self.net = net
        self.r = results
        self.deadline = deadline
        self.model = Model()
        self.seq = 100

    def next_seq(self):
        self.seq += 1
        return self.seq

    def sentinel(self, ingress):
        """A frame from `ingress` that ptpproxy must relay, with where it goes and its model entry."""
        seq = self.next_seq()
        if ingress == U:
            return l2(GM_MAC, sync(seq)), (D1, D2), ("sync", None)
        mac = A_MAC if ingress == D1 else B_MAC
        return l2(mac, delay_req(seq, mac)), (U,), ("delay_req", mac)

    def step(self, name, ingress, frame, kind, to, drop=None, client=None):
        """Send `frame` into `ingress`; it must come out of exactly the ports `to`, unchanged."""
        if time.time() > self.deadline:
            self.r.check(f"{self.name}: {name}", False, "out of time")
            return
        s_frame, s_to, (s_kind, s_client) = self.sentinel(ingress)
        self.net.drain()
        self.net.send(ingress, frame)
        self.net.send(ingress, s_frame)
        expected = [(p, frame) for p in to] + [(p, s_frame) for p in s_to]
        missing, extra = self.net.exchange(expected, timeout=10.0, grace=0.4)
        self.model.account(ingress, kind, to, drop, client)
        self.model.account(ingress, s_kind, s_to, None, s_client)
        where = ", ".join(PORTS[p] for p in to) or "nowhere"
        detail = "; ".join(
            [f"missing on {PORTS[p]}: {describe(f)}" for p, f in missing]
            + [f"unexpected on {PORTS[p]}: {describe(f)} {f.hex()}" for p, f in extra]
        )
        self.r.check(f"{self.name}: {name} -> {where}", not missing and not extra, detail)

    def first_frame(self, ingress, frame, kind, to, client=None):
        """The first frame a port receives after ptpproxy opened it must be relayed like any
        other. Returns whether it was; the model counts it only then (a frame that never reached
        ptpproxy is in no counter of it)."""
        self.net.drain()
        self.net.send(ingress, frame)
        missing, extra = self.net.exchange([(p, frame) for p in to], timeout=5.0, grace=0.4)
        through = len(missing) < len(to)
        if through:
            self.model.account(ingress, kind, to, client=client)
        detail = "; ".join(
            [f"missing on {PORTS[p]}: {describe(f)}" for p, f in missing]
            + [f"unexpected on {PORTS[p]}: {describe(f)}" for p, f in extra]
        )
        if missing and not through:
            detail += " (compare the kernel's rx count of the NIC with ptpproxy's rx below: a frame" \
                      " the kernel received but ptpproxy never counted was lost in capture)"
        self.r.check(
            f"{self.name}: first frame into {PORTS[ingress]} after start ({describe(frame).split(' from')[0]})"
            f" -> {', '.join(PORTS[p] for p in to)}",
            not missing and not extra,
            detail,
        )
        return through

    def probe(self):
        """The first Sync from upstream, then more until one comes out of both downstream ports
        (bounded): the data path is up."""
        t0 = time.time()
        if self.first_frame(U, l2(GM_MAC, sync(self.next_seq())), "sync", (D1, D2)):
            return True
        for attempt in range(2, 21):
            frame = l2(GM_MAC, sync(self.next_seq()))
            self.net.send(U, frame)
            missing, extra = self.net.exchange([(D1, frame), (D2, frame)], timeout=1.5, grace=0.2)
            if len(missing) < 2:
                self.model.account(U, "sync", (D1, D2))
                self.r.check(
                    f"{self.name}: relaying (a Sync came through after {attempt} tries, "
                    f"{time.time() - t0:.2f} s)",
                    not missing and not extra,
                    f"missing {[PORTS[p] for p, _ in missing]}, unexpected {[describe(f) for _, f in extra]}",
                )
                return True
            if time.time() > self.deadline:
                break
        self.r.check(f"{self.name}: relaying", False, "no probe Sync came through in 20 tries")
        return False

    def run_steps(self):
        if not self.probe():
            return
        self.first_frame(D1, l2(A_MAC, delay_req(self.next_seq(), A_MAC)), "delay_req", (U,), A_MAC)
        self.first_frame(D2, l2(B_MAC, delay_req(self.next_seq(), B_MAC)), "delay_req", (U,), B_MAC)
        gm_seq = self.next_seq()
        self.step("Sync (two-step) from upstream", U, l2(GM_MAC, sync(gm_seq)), "sync", (D1, D2))
        self.step("Follow_Up from upstream", U, l2(GM_MAC, follow_up(gm_seq)), "follow_up", (D1, D2))
        self.step("Announce from upstream", U, l2(GM_MAC, announce(gm_seq)), "announce", (D1, D2))
        self.step(
            "UDPv4 Sync to 224.0.1.129 from upstream",
            U,
            udp4(GM_MAC, (192, 0, 2, 1), sync(self.next_seq())),
            "sync",
            (D1, D2),
        )
        a_seq = self.next_seq()
        self.step(
            "Delay_Req of client A on lan1", D1, l2(A_MAC, delay_req(a_seq, A_MAC)), "delay_req",
            (U,), client=A_MAC,
        )
        self.step(
            "Delay_Resp for client A from upstream", U, l2(GM_MAC, delay_resp(a_seq, A_MAC)),
            "delay_resp", (D1,),
        )
        self.step(
            "Delay_Resp for an unknown client from upstream", U,
            l2(GM_MAC, delay_resp(self.next_seq(), X_MAC)), "delay_resp", (), drop="unknown_client",
        )
        self.step(
            "Delay_Req arriving on upstream", U, l2(C_MAC, delay_req(self.next_seq(), C_MAC)),
            "delay_req", (), drop="delay_req_from_upstream",
        )
        b_seq = self.next_seq()
        self.step(
            "Delay_Req of client B on lan2", D2, l2(B_MAC, delay_req(b_seq, B_MAC)), "delay_req",
            (U,), client=B_MAC,
        )
        self.step(
            "Delay_Resp for client B from upstream", U, l2(GM_MAC, delay_resp(b_seq, B_MAC)),
            "delay_resp", (D2,),
        )
        self.step(
            "Signaling (358-byte frame) from upstream", U, l2(GM_MAC, signaling(self.next_seq())),
            "signaling", (D1, D2),
        )
        self.step(
            "Management GET from client A on lan1", D1, l2(A_MAC, management_get(self.next_seq(), A_MAC)),
            "management", (U,),
        )
        self.step(
            "Sync from downstream lan1 (rogue master)", D1, l2(A_MAC, sync(self.next_seq())),
            "sync", (), drop="rogue_master",
        )

    def clock_steps(self):
        """The guest's wall clock steps 8 times (forward up to 1 s, then back) while a Sync and its
        Follow_Up go through every 2 ms: no Follow_Up may carry a step as residence (more than
        max_hold_us + 50 ms, the shipped config's ceiling), and ptpproxy counts the turns it
        could not time (clock_step). Needs the residence correction (the shipped default)."""
        c = self.console
        since = c.mark()
        c.send("start-clocksteps")
        if not wait_ready(c, self.r, "clocksteps", since, time.time()) or not self.probe():
            return
        self.net.drain()
        since = c.mark()
        c.send("clock-steps")
        sent, got = {}, []
        seq = 5000
        end = time.time() + 4.0  # the steps take 2 s of guest time after the command arrives
        while time.time() < end:
            seq += 1
            s, f = l2(GM_MAC, sync(seq)), l2(GM_MAC, follow_up(seq))
            self.net.send(U, s)
            self.net.send(U, f)
            sent[without_correction(f)] = f
            got += self.net.receive(time.time() + 0.002)
        done, _ = c.wait(r"^@@ptpq clock-steps-done", since, timeout=10)
        got += self.net.receive(time.time() + 0.5)
        added = [added_correction_ns(sent[without_correction(fr)], fr)
                 for p, fr in got if p == D1 and without_correction(fr) in sent]
        ceiling_ns = (2000 + 50_000) * 1000
        worst = max(added, default=0)
        self.r.check(
            f"{self.name}: 8 wall-clock steps (up to 1 s) during {len(sent)} Sync/Follow_Up pairs: "
            f"no Follow_Up on lan1 carries more than max_hold_us + 50 ms "
            f"(largest {worst / 1e6:.3f} ms of {len(added)})",
            done is not None and len(added) >= len(sent) // 2 and 0 <= min(added, default=0) and worst <= ceiling_ns,
            f"steps done: {done is not None}; {len(added)} Follow_Up received of {len(sent)}; "
            f"{sum(a > ceiling_ns for a in added)} over the ceiling, the largest (ns): "
            f"{sorted(a for a in added if a > ceiling_ns)[-5:]}",
        )
        since = c.mark()
        c.send("clockstep-report")
        end_i, _ = c.wait(r"^@@ptpq clockstep-stopped", since, timeout=60)
        text = "\n".join(c.lines[since:end_i] if end_i is not None else [])
        m = re.search(r"\bclock_step (\d+)", text)
        self.r.check(
            f"{self.name}: the steps were seen: correction clock_step "
            f"{m.group(1) if m else '?'} (turns whose events were held back, or timestamps unused)",
            m is not None and int(m.group(1)) > 0,
            "no clock_step counter in `ptpproxy status`" if m is None else "",
        )

    # ---- the report: `ptpproxy status` and syslog, compared with the model

    def report(self):
        c = self.console
        since = c.mark()
        c.send("report")
        end, _ = c.wait(r"^@@ptpq report-end", since, timeout=60)
        if end is None:
            self.r.check(f"{self.name}: guest report", False, "no '@@ptpq report-end' (60 s or the deadline)")
            return
        lines = c.lines[since:end]

        def marker(word):
            for i, line in enumerate(lines):
                m = re.match(rf"^@@ptpq {word}(?: rc=(\d+))?(.*)$", line)
                if m:
                    return i, (int(m.group(1)) if m.group(1) is not None else None), m.group(2)
            return None, None, None

        nb, _, _ = marker("netdev-begin")
        ne, _, _ = marker("netdev-end")
        if nb is not None and ne is not None:
            self.check_netdev(lines[nb + 1 : ne])
        else:
            self.r.check(f"{self.name}: /proc/net/dev printed", False)
        sb, _, _ = marker("status-begin")
        se, status_rc, _ = marker("status-end")
        self.r.check(
            f"{self.name}: `ptpproxy status` printed the status file",
            sb is not None and se is not None and status_rc == 0,
            f"rc={status_rc}",
        )
        if sb is not None and se is not None:
            self.check_status(lines[sb + 1 : se])
        _, rc, _ = marker("initstatus-running")
        self.r.check(f"{self.name}: init script status while running exits 0", rc == 0, f"rc={rc}")
        _, rc, rest = marker("stop")
        self.r.check(
            f"{self.name}: init script stop exits 0 and the daemon is gone",
            rc == 0 and "running=no" in (rest or ""),
            f"rc={rc}{rest}",
        )
        _, rc, _ = marker("initstatus-stopped")
        self.r.check(f"{self.name}: init script status after stop exits 3", rc == 3, f"rc={rc}")
        lb, _, _ = marker("syslog-begin")
        le, _, _ = marker("syslog-end")
        if lb is None or le is None:
            self.r.check(f"{self.name}: syslog lines printed", False)
            return
        self.check_syslog(lines[lb + 1 : le])

    def check_netdev(self, lines):
        """The virtual wire lost nothing: the guest kernel received every frame we sent."""
        rx = {}
        for line in lines:
            name, sep, rest = line.partition(":")
            if sep and name.strip() in PORTS:
                rx[name.strip()] = int(rest.split()[1])
        want = {PORTS[i]: self.net.sent[i] for i in range(3)}
        self.r.check(
            f"{self.name}: guest kernel rx packets per NIC = frames the host sent (all phases)",
            rx == want,
            f"kernel {rx}, host sent {want}",
        )
        print(f"     (kernel rx packets {rx}; ptpproxy rx counts only what this process captured)")

    def check_status(self, table):
        m = self.model
        text = "\n".join(table)
        head = table[0] if table else ""
        self.r.check(
            f"{self.name}: status header names board {self.board} and delay_resp steer",
            f"(board {self.board})" in head and head.rstrip().endswith("delay_resp steer"),
            head,
        )
        rows = {}
        for line in table:
            w = line.split()
            if len(w) == 7 and w[0] in PORTS:
                rows[w[0]] = w[1:]
        want_rows = {
            PORTS[i]: ["upstream" if i == U else "downstream", "yes", str(m.rx[i]), str(m.tx[i]), "0", "0"]
            for i in range(3)
        }
        self.r.check(
            f"{self.name}: status ports (role, up, rx, tx, tx_err 0, kernel_drop 0) = model",
            rows == want_rows,
            f"status {rows}, model {want_rows}",
        )

        def counters(label):
            for line in table:
                w = line.split()
                if w and w[0] == label:
                    if w[1:] == ["none"]:
                        return {}
                    return {k: int(v) for k, v in zip(w[1::2], w[2::2])}
            return None

        fwd = counters("forwarded")
        want_fwd = {k: m.forwarded.get(k, 0) for k in
                    ("sync", "follow_up", "announce", "delay_req", "delay_resp", "signaling", "management")}
        self.r.check(f"{self.name}: status forwarded = model", fwd == want_fwd,
                     f"status {fwd}, model {want_fwd}")
        dr = counters("delay_resp")
        want_dr = {"steered": m.steered, "unicast": 0, "flooded": 0}
        self.r.check(f"{self.name}: status delay_resp = model", dr == want_dr, f"status {dr}, model {want_dr}")
        completed = [line.split() for line in table if line.startswith("udp_checksums_completed")]
        if completed:  # none of our UDP frames carries a partial checksum
            self.r.check(f"{self.name}: status udp_checksums_completed 0", completed[0][1:] == ["0"],
                         " ".join(completed[0]))
        dropped = counters("dropped")
        self.r.check(f"{self.name}: status dropped = model", dropped == dict(m.dropped),
                     f"status {dropped}, model {dict(m.dropped)}")
        # The same drops by ingress port ("  on PORT reason n ..."): they add up to the total.
        by_port = collections.Counter()
        for line in table:
            w = line.split()
            if len(w) >= 4 and w[0] == "on" and w[1] in PORTS:
                by_port.update({k: int(v) for k, v in zip(w[2::2], w[3::2])})
        self.r.check(f"{self.name}: status drops by port add up to the total", dict(by_port) == dict(m.dropped),
                     f"by port {dict(by_port)}, total {dict(m.dropped)}")
        clients = {}
        for line in table:
            w = line.split()
            # CLIENT PORT MAC IDLE_S DELAY_REQ DELAY_RESP MOVED (5 columns in older versions)
            if len(w) in (5, 7) and re.fullmatch(r"[0-9a-f]{6}\.[0-9a-f]{4}\.[0-9a-f]{6}-\d+", w[0]):
                clients[w[0]] = [w[1], w[2], int(w[4])]
        want_clients = {k: list(v) for k, v in m.clients.items()}
        cm = re.search(r"^clients\s+(\d+) of (\d+) \(learned (\d+), aged (\d+)(?:, moved \d+)?\)", text, re.M)
        self.r.check(
            f"{self.name}: status client table (identity, port, MAC, Delay_Req count) = model",
            clients == want_clients and cm is not None
            and int(cm.group(1)) == len(want_clients) == int(cm.group(3)) and cm.group(4) == "0",
            f"status {clients} / {cm.group(0) if cm else 'no clients line'}, model {want_clients}",
        )

    def check_syslog(self, lines):
        m = self.model
        log = [line for line in lines if re.search(r"ptpproxy(-armv7)?\[\d+\]:", line)]
        text = "\n".join(log)
        print(f"     ({len(log)} syslog lines of ptpproxy)")
        for i, port in enumerate(PORTS):
            role = "upstream" if i == U else "downstream"
            self.r.check(
                f"{self.name}: syslog: {role} port {port} opened",
                re.search(rf"{role} port {port} opened \(ring \d+ bytes", text) is not None,
            )
        self.r.check(
            f"{self.name}: syslog: started line",
            f"started: upstream eth0, 2 downstream, delay_resp steer, board {self.board}" in text,
        )
        self.r.check(f"{self.name}: syslog: stopping", re.search(r": stopping$", text, re.M) is not None)
        # "clients 2/1024; forwarded sync=.. ...; dropped reason=n ...; eth0 rx=.. tx=.. ...; lan1 ..."
        want = {
            "clients": {"count": len(m.clients)},
            "forwarded": {k: m.forwarded.get(k, 0) for k in
                          ("sync", "follow_up", "announce", "delay_req", "delay_resp", "signaling", "management")},
            "dropped": dict(m.dropped),
        }
        for i, port in enumerate(PORTS):
            want[port] = {"rx": m.rx[i], "tx": m.tx[i], "tx_errors": 0, "kernel_drops": 0}
        got = None
        for line in log:
            mm = re.search(r"\]: clients (\d+)/\d+; (forwarded .*)$", line)
            if not mm:
                continue
            got = {"clients": {"count": int(mm.group(1))}}
            for section in mm.group(2).split("; "):
                name, _, pairs = section.partition(" ")
                # (sections of named values only: "residence correction k=v ...", "io k=v ..." too)
                got[name] = {k: int(v) for k, eq, v in (p.partition("=") for p in pairs.split()) if eq}
            got = {k: v for k, v in got.items() if k in want}
        self.r.check(f"{self.name}: syslog: final counters line = model", got == want,
                     f"syslog {got}, model {want}")
        # The one warning the steps provoke: the rogue master's Sync on lan1, named once.
        rogue = [line for line in log if re.search(
            r"\.warn .*rogue master on lan1: [0-9a-f]{6}\.[0-9a-f]{4}\.[0-9a-f]{6}-1 sends", line)]
        self.r.check(f"{self.name}: syslog: the rogue master on lan1 named once (a warning)", len(rogue) == 1,
                     f"{len(rogue)} lines")
        bad = [line for line in log if re.search(r"\.(err|warn|crit|alert|emerg) ", line) and line not in rogue]
        self.r.check(f"{self.name}: syslog: no other error or warning from ptpproxy", not bad, "; ".join(bad))


class BridgePhase:
    """The switch shape: the guest bridges eth0, lan1 and lan2 in br0 and ptpproxy relays on the
    members. Each frame is sent alone and every copy that comes out of any NIC in the next
    1.5 s is counted, so a frame the bridge forwards besides ptpproxy shows as a second copy.

      bridge-leave  "bridge_ports": "leave": the counts without a filter (the bridge forwards
                    PTP too: two copies), checked so the "after" below means something
      bridge-tc     "bridge_filter": "tc" forces the flower trap filters on these virtio NICs
                    (not switchdev; TC_ACT_TRAP acts as STOLEN in software): each PTP frame,
                    untagged or under an 802.1Q tag (L2 and UDPv4: the filters match under the
                    tag too), comes out once (ptpproxy's copy), a non-PTP multicast frame still goes
                    through the bridge once; `ptpproxy status` says "installed (tc)" for the
                    three ports, syslog names the filters installed and removed
      reload        without lan2: lan2's filters go, eth0's and lan1's are replaced
      after exit    the bridge forwards PTP again: the filters are gone (a trap left behind
                    would let nothing through now that ptpproxy is stopped)
    """

    WINDOW = 1.5
    OTHER = bytes.fromhex("030000000042") + GM_MAC + b"\x88\xb5" + b"ptpq bridge sentinel".ljust(46, b".")

    def __init__(self, console, net, results, deadline):
        self.c = console
        self.net = net
        self.r = results
        self.deadline = deadline
        self.seq = 7000

    def frames(self):
        """(name, ingress, frame) of this phase's probes, with fresh sequence numbers."""
        self.seq += 1
        n = self.seq
        return [
            ("L2 Sync from eth0", U, l2(GM_MAC, sync(n))),
            ("UDPv4 Sync from eth0", U, udp4(GM_MAC, [192, 0, 2, 1], sync(n))),
            ("L2 Sync from eth0, VLAN 10", U, tagged(l2(GM_MAC, sync(n)), 10)),
            ("UDPv4 Sync from eth0, VLAN 10", U, tagged(udp4(GM_MAC, [192, 0, 2, 1], sync(n)), 10)),
            ("Delay_Req of client A on lan1", D1, l2(A_MAC, delay_req(n, A_MAC))),
            ("a non-PTP multicast frame from eth0", U, self.OTHER),
        ]

    def copies(self, ingress, frame):
        """Send `frame` into `ingress`; how many identical copies came out of each NIC."""
        self.net.drain()
        self.net.send(ingress, frame)
        out = [0, 0, 0]
        end = time.time() + self.WINDOW
        while (left := end - time.time()) > 0:
            ready, _, _ = select.select(self.net.socks, [], [], left)
            for sock in ready:
                port = self.net.socks.index(sock)
                while True:
                    try:
                        got = sock.recv(65536)
                    except BlockingIOError:
                        break
                    self.net.received[port] += 1
                    out[port] += got == frame
        return out

    def probe(self, label, expected, frames=None):
        """Each probe frame must come out `expected[name]` times per NIC (eth0, lan1, lan2)."""
        for name, ingress, frame in frames or self.frames():
            if time.time() > self.deadline:
                self.r.check(f"{label}: {name}", False, "out of time")
                return
            got = self.copies(ingress, frame)
            want = expected[name]
            counts = ", ".join(f"{PORTS[p]} {got[p]}" for p in range(3))
            self.r.check(f"{label}: {name}: copies {counts}", got == want,
                         f"expected {', '.join(f'{PORTS[p]} {want[p]}' for p in range(3))}")

    def start(self, mode):
        since = self.c.mark()
        self.c.send(f"bridge-start {mode}")
        return wait_ready(self.c, self.r, f"bridge-{mode}", since, time.time()) is not None

    def report(self, label):
        """Status and syslog of the running phase; ptpproxy is stopped by it."""
        since = self.c.mark()
        self.c.send("bridge-report")
        end, _ = self.c.wait(r"^@@ptpq bridge-syslog-end", since, timeout=60)
        lines = self.c.lines[since:end] if end is not None else []
        self.r.check(f"{label}: guest report", end is not None, "no '@@ptpq bridge-syslog-end'")
        stop = [line for line in lines if line.startswith("@@ptpq bridge-stop")]
        self.r.check(f"{label}: init script stop ends ptpproxy",
                     bool(stop) and "running=no" in stop[0], stop[0] if stop else "no stop line")
        return lines

    def run(self):
        # Before: the bridge forwards PTP besides ptpproxy.
        if self.start("leave"):
            self.probe("bridge-leave (before)", {
                "L2 Sync from eth0": [0, 2, 2],
                "UDPv4 Sync from eth0": [0, 2, 2],
                "L2 Sync from eth0, VLAN 10": [0, 2, 2],
                "UDPv4 Sync from eth0, VLAN 10": [0, 2, 2],
                "Delay_Req of client A on lan1": [2, 0, 1],
                "a non-PTP multicast frame from eth0": [0, 1, 1],
            })
            self.report("bridge-leave")
        # After: tc trap filters on the three members.
        if not self.start("tc"):
            return
        once = {
            "L2 Sync from eth0": [0, 1, 1],
            "UDPv4 Sync from eth0": [0, 1, 1],
            "L2 Sync from eth0, VLAN 10": [0, 1, 1],
            "UDPv4 Sync from eth0, VLAN 10": [0, 1, 1],
            "Delay_Req of client A on lan1": [1, 0, 0],
            "a non-PTP multicast frame from eth0": [0, 1, 1],
        }
        self.probe("bridge-tc", once)
        # A reload without lan2: its filters go, those of eth0 and lan1 stay. lan2 is still in
        # br0 but not relayed: what the trap on eth0 takes reaches it no more (the switch's
        # behaviour too), while its own frames go through the bridge untrapped.
        since = self.c.mark()
        self.c.send("bridge-reload")
        i, m = self.c.wait(r"^@@ptpq bridge-reloaded rc=(\d+)", since, timeout=30)
        reloaded = self.r.check("bridge-tc: a reload without lan2 replaces the filters (eth0, lan1)",
                                i is not None and m.group(1) == "0",
                                self.c.lines[i] if i is not None else "no bridge-reloaded line")
        if reloaded:
            self.seq += 1
            n = self.seq
            self.probe("bridge-tc after the reload", {
                "L2 Sync from eth0": [0, 1, 0],
                "Delay_Req of client B on lan2 (no longer relayed)": [1, 1, 0],
            }, [
                ("L2 Sync from eth0", U, l2(GM_MAC, sync(n))),
                ("Delay_Req of client B on lan2 (no longer relayed)", D2, l2(B_MAC, delay_req(n, B_MAC))),
            ])
        lines = self.report("bridge-tc")
        rows = [line for line in lines if re.match(r"^(eth0|lan1)\s+member of br0\s+installed \(tc\)$", line)]
        self.r.check("bridge-tc: `ptpproxy status` after the reload: eth0, lan1 member of br0, PTP_FILTER installed (tc)",
                     len(rows) == 2, "\n".join(line for line in lines if "br0" in line) or "no bridge rows")
        log = [line for line in lines if "ptpproxy" in line and not line.startswith("@@ptpq")]
        installed = [line for line in log if "bridge filter: PTP no longer forwarded by the bridge between "
                     "eth0, lan1, lan2 (tc flower trap filters" in line]
        removed = [line for line in log if "bridge filter: removed (tc flower trap filters" in line]
        self.r.check("bridge-tc: syslog: tc trap filters installed at start on eth0, lan1, lan2", bool(installed),
                     "; ".join(log[-8:]))
        self.r.check("bridge-tc: syslog: tc trap filters removed at exit", bool(removed), "; ".join(log[-8:]))
        # The probes are a few frames, not a grandmaster's stream: the upstream health warning
        # ("no Sync or Announce for 3 s") is expected; any other warning or error is not.
        bad = [line for line in log if re.search(r"\.(err|warn|crit|alert|emerg) ", line)
               and "no Sync or Announce" not in line]
        self.r.check("bridge-tc: syslog: no error or warning from ptpproxy (but upstream health)",
                     not bad, "; ".join(bad))
        # After exit: the bridge alone, forwarding PTP again.
        self.probe("bridge after ptpproxy exited (filters gone)", {
            "L2 Sync from eth0": [0, 1, 1],
            "UDPv4 Sync from eth0": [0, 1, 1],
            "L2 Sync from eth0, VLAN 10": [0, 1, 1],
            "UDPv4 Sync from eth0, VLAN 10": [0, 1, 1],
            "Delay_Req of client A on lan1": [1, 0, 1],
            "a non-PTP multicast frame from eth0": [0, 1, 1],
        })


def wait_ready(console, results, phase, since, t0):
    i, m = console.wait(rf"^@@ptpq (ready|not-ready) phase={phase}\b(.*)$", since, timeout=180)
    if i is None or m.group(1) != "ready":
        results.check(f"{phase}: ptpproxy started and ready", False,
                      "no ready marker" if i is None else console.lines[i])
        return None
    up = re.search(r"uptime=([\d.]+) start_uptime=([\d.]+)", m.group(2))
    elapsed = time.time() - t0
    results.check(
        f"{phase}: ptpproxy started and ready ({elapsed:.1f} s after {'QEMU start' if phase == 'aarch64' else 'the command'}"
        + (f"; guest uptime {up.group(1)} s, init script start to ready {float(up.group(1)) - float(up.group(2)):.2f} s)" if up else ")"),
        True,
    )
    return elapsed, (float(up.group(1)) if up else None)


def run(args):
    results = Results()
    info = {}
    console = Console(args.console, args.console_in, args.deadline, args.qemu_pid)
    net = Net([int(p) for p in args.host_ports.split(",")], [int(p) for p in args.guest_ports.split(",")])

    ready = wait_ready(console, results, "aarch64", 0, args.t0)
    if ready:
        info["boot_to_ready_s"] = round(ready[0], 2)
        info["guest_uptime_at_ready_s"] = ready[1]
        _, m = console.wait(r"^@@ptpq version /usr/sbin/ptpproxy: (.*)$", 0, timeout=1)
        results.check(
            "aarch64: --version names board qemu-virt-aarch64, target aarch64-unknown-linux-musl",
            m is not None and "board qemu-virt-aarch64, target aarch64-unknown-linux-musl" in m.group(1),
            m.group(1) if m else "no version line",
        )
        _, m = console.wait(r"^@@ptpq badconfig rc=(\d+) running=(\w+)", 0, timeout=1)
        results.check(
            "init script refuses to start on a config --check-config rejects",
            m is not None and m.group(1) != "0" and m.group(2) == "no",
            m.group(0) if m else "no badconfig line",
        )
        phase = Phase("aarch64", "qemu-virt-aarch64", console, net, results, args.deadline)
        phase.run_steps()
        phase.report()
        Phase("clocksteps", "qemu-virt-aarch64", console, net, results, args.deadline).clock_steps()

        if args.armv7:
            since = console.mark()
            t = time.time()
            console.send("start-armv7")
            if wait_ready(console, results, "armv7", since, t):
                _, m = console.wait(r"^@@ptpq version /usr/sbin/ptpproxy-armv7: (.*)$", 0, timeout=1)
                board = re.search(r"board (\S+?),", m.group(1)).group(1) if m else "?"
                results.check(
                    "armv7: --version names target armv7-unknown-linux-musleabihf",
                    m is not None and "target armv7-unknown-linux-musleabihf" in m.group(1),
                    m.group(1) if m else "no version line",
                )
                phase = Phase("armv7", board, console, net, results, args.deadline)
                phase.run_steps()
                phase.report()

    if ready and not args.no_bridge:
        BridgePhase(console, net, results, args.deadline).run()

    since = console.mark()
    console.send("poweroff")
    i, _ = console.wait(r"^@@ptpq poweroff", since, timeout=30)
    results.check("guest powers off on command", i is not None)
    if sum(net.noise.values()):
        print(f"     (ignored non-PTP frames from the guest: {dict(net.noise)})")
    info.update(passed=results.passed, failed=results.failed, failures=results.failures)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(info, f)
    print(f"host checks: {results.passed} ok, {results.failed} failed")
    return 0 if results.failed == 0 else 1


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "ports":
        free_ports(int(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run"])
    p.add_argument("--host-ports", required=True)
    p.add_argument("--guest-ports", required=True)
    p.add_argument("--console", required=True)
    p.add_argument("--console-in", required=True)
    p.add_argument("--t0", type=float, required=True, help="epoch time QEMU was started")
    p.add_argument("--deadline", type=float, required=True, help="epoch time to give up")
    p.add_argument("--qemu-pid", type=int, help="stop waiting for the guest when this process is gone")
    p.add_argument("--armv7", action="store_true")
    p.add_argument("--no-bridge", action="store_true", help="skip the bridge (tc trap) phase")
    p.add_argument("--results")
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
