#!/usr/bin/env python3
"""Write the committed seed corpus fuzz/seeds/<target>/ from the real ptp4l captures.

Usage: fuzz/gen_seeds.py            (from anywhere; rewrites fuzz/seeds/{wire_roundtrip,relay,config_parse})

Sources: tests/data/replay/{l2,udp4,udp6}/{up,dn1,dn2}.pcap (see tests/data/README.md) and the shipped
configuration rootfs-overlay/etc/ptpproxy/config.json. Standard library only; deterministic.

- wire_roundtrip: one raw Ethernet frame per file. Of each (transport, capture, messageType, source MAC)
  the first two frames, plus a VLAN-tagged copy of one frame per (transport, messageType) and a copy of
  each UDP frame kind with its checksum left partial (the folded pseudo-header sum, as a veth sender
  leaves it).
- relay: the three captures of one transport merged by capture time and replayed as the relay target's
  "raw frame" events (upstream = port 0, dn1 = 1, dn2 = 2), in windows of 48 frames, under steer; the first
  window also under unicast and flood; plus a few structured scenarios (learn then answer, a flood up to
  the table's capacity, expiry, a reload). The byte layout is the one fuzz/fuzz_targets/relay.rs reads
  (documented in fuzz/README.md).
- config_parse: the shipped configuration and a few variants.
"""
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
REPLAY = ROOT / "tests" / "data" / "replay"
SEEDS = FUZZ / "seeds"

# Must match ptpproxy_fuzz::STEPS (fuzz/src/lib.rs), in nanoseconds.
STEPS = [0, 1, 1_000, 1_000_000, 7_812_500, 62_500_000, 125_000_000, 500_000_000, 999_999_999,
         1_000_000_000, 1_000_000_001, 2_000_000_000, 5_000_000_000, 10_000_000_001, 61_000_000_000,
         3_601_000_000_000]


def read_pcap(path):
    """[(time_ns, frame)] from a classic pcap file (either byte order, µs or ns, Ethernet)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise SystemExit(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        out.append((sec * 1_000_000_000 + (frac if nano else frac * 1000), data[off:off + incl]))
        off += incl
    return out


def l3_offset(frame):
    return 18 if frame[12:14] == b"\x81\x00" else 14


def udp_offset(frame):
    l3 = l3_offset(frame)
    et = frame[l3 - 2:l3]
    if et == b"\x08\x00":
        return l3 + (frame[l3] & 0x0F) * 4
    if et == b"\x86\xdd":
        return l3 + 40
    return None


def ptp_offset(frame):
    u = udp_offset(frame)
    return l3_offset(frame) if u is None else u + 8


def sum_words(b):
    if len(b) % 2:
        b = b + b"\x00"
    return sum(struct.unpack(f"!{len(b) // 2}H", b))


def fold(s):
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def with_partial_checksum(frame):
    """The frame with its UDP checksum replaced by the folded pseudo-header sum."""
    u = udp_offset(frame)
    l3 = l3_offset(frame)
    udp_len = struct.unpack("!H", frame[u + 4:u + 6])[0]
    if frame[l3 - 2:l3] == b"\x08\x00":
        addrs = frame[l3 + 12:l3 + 20]
    else:
        addrs = frame[l3 + 8:l3 + 40]
    c = fold(sum_words(addrs) + 17 + udp_len)
    return frame[:u + 6] + struct.pack("!H", c) + frame[u + 8:]


def with_vlan(frame, tci=0x200A):
    return frame[:12] + b"\x81\x00" + struct.pack("!H", tci) + frame[12:]


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def nearest_step(delta_ns):
    return min(range(len(STEPS)), key=lambda i: abs(STEPS[i] - delta_ns))


def wire_seeds(captures):
    seen, tagged = {}, set()
    for transport, port_name, frames in captures:
        for _, f in frames:
            t = f[ptp_offset(f)] & 0x0F
            key = (transport, port_name, t, f[6:12])
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 2:
                continue
            base = f"{transport}-{port_name}-type{t:x}-{f[6:12].hex()}-{seen[key]}"
            write("wire_roundtrip", base, f)
            if (transport, t) not in tagged:
                tagged.add((transport, t))
                write("wire_roundtrip", f"{transport}-type{t:x}-vlan", with_vlan(f))
                if transport != "l2":
                    write("wire_roundtrip", f"{transport}-type{t:x}-partial-csum",
                          with_partial_checksum(f))


# Configuration bytes of the relay target (ptpproxy_fuzz::config): two downstream ports, domain 0,
# client_timeout_s 10 (b & 0x0F = 8), max_delay_req_rate 16 (b >> 4 = 8).
MODES = {"steer": 0x08, "unicast": 0x09, "flood": 0x0A}
B_TIMEOUT10_RATE16 = 0x88
HEADER_TAIL = bytes([0x00, 0x00, 0x01, 0x01])  # c (domains), d (names), hash seed, start time


def relay_header(mode):
    return bytes([MODES[mode], B_TIMEOUT10_RATE16]) + HEADER_TAIL


def raw_event(port, step, frame):
    return bytes([7, port, step]) + struct.pack("!H", len(frame)) + frame


def relay_seeds(by_transport):
    for transport, merged in by_transport.items():
        windows = [merged[i:i + 48] for i in range(0, len(merged), 48)]
        for w, window in enumerate(windows):
            modes = ["steer", "unicast", "flood"] if w == 0 else ["steer"]
            for mode in modes:
                out = bytearray(relay_header(mode))
                prev = window[0][0]
                for t, port, frame in window:
                    out += raw_event(port, nearest_step(t - prev), frame)
                    prev = t
                out += bytes([10, 9])  # an expiry tick one second later
                write("relay", f"replay-{transport}-{mode}-{w:02}", bytes(out))

    # Structured scenarios (event layout in fuzz/README.md). A structured frame is: tag 0, port,
    # step, then ptpproxy_fuzz::build_frame's bytes: b0 (transport/vlan/dst/checksum), b1 (type),
    # domain selector, source selector, requesting selector, sequenceId (2), version, tlv/length,
    # b10 (flags etc.), mutation count.
    def frame(port, step, b0, msg_type, src, req, seq=1):
        return bytes([0, port, step, b0, msg_type, 0, src, req]) + struct.pack("!H", seq) + \
            bytes([0, 0, 0, 0])

    learn_and_answer = bytearray(relay_header("steer"))
    for transport in (0, 1, 2):
        learn_and_answer += frame(1, 3, transport, 0x1, 1, 0)  # c11 Delay_Req on dn1
        learn_and_answer += frame(2, 3, transport, 0x1, 3, 0)  # c21 Delay_Req on dn2
        learn_and_answer += frame(0, 3, transport, 0x9, 0, 1)  # Delay_Resp for c11
        learn_and_answer += frame(0, 3, transport, 0x9, 0, 3)  # Delay_Resp for c21
        learn_and_answer += frame(0, 3, transport, 0x0, 0, 0)  # Sync
        learn_and_answer += frame(1, 3, transport, 0x0, 1, 0)  # rogue Sync on dn1
    learn_and_answer += bytes([10, 14, 15])  # 61 s later: aged; then straight to the deadline
    learn_and_answer += frame(0, 3, 0, 0x9, 0, 1)  # Delay_Resp for a forgotten client
    write("relay", "scenario-learn-answer-age", bytes(learn_and_answer))

    for mode in MODES:
        s = bytearray(relay_header(mode))
        s += bytes([12, 1, 3, 251, 0, 0x40])  # flood dn1: its share, distinct MACs
        s += bytes([12, 2, 3, 254, 2, 0x41])  # flood dn2: capacity, 8 per MAC
        s += bytes([13, 3, 5, 1])             # Delay_Resp for a known client
        s += bytes([12, 1, 3, 3, 1, 0x42])    # 4 identities behind one MAC
        s += bytes([12, 2, 3, 251, 0, 0x40])  # dn1's identities again, now on dn2: moves
        s += bytes([11, 0x19, 0x88, 0x01, 0x00])  # reload: unicast, 4 ports, timeout 10
        s += bytes([10, 13])                  # 10 s later
        write("relay", f"scenario-flood-{mode}", bytes(s))

    partial = bytearray(relay_header("unicast"))
    for transport in (1, 2):
        partial += frame(1, 3, transport | 0x80, 0x1, 1, 0)  # partial checksum Delay_Req
        partial += frame(0, 3, transport | 0x80, 0x9, 0, 1)  # partial checksum Delay_Resp
        partial += bytes([14, 2, 3])                           # the same again from dn2: moved
    write("relay", "scenario-partial-checksum-unicast", bytes(partial))


def finding_seeds():
    """The relay-level reproducers of the findings in fuzz/README.md ("Findings")."""
    def req(port, clock, pn_sel, mac_sel, b4, seq=1):
        b3 = clock | (pn_sel << 3) | (mac_sel << 5)
        return bytes([0, port, 3, 0, 0x01, 0, b3, b4]) + struct.pack("!H", seq) + bytes([0, 0, 0, 0])

    # One downstream port. Client 1 (own MAC), then client 1 from MAC 02:00:00:00:09:77, then
    # eight new identities from that MAC: the eighth must be refused (mac_limit).
    s = bytearray([0x00, B_TIMEOUT10_RATE16]) + HEADER_TAIL
    s += req(1, 1, 0, 0, 0x77)
    s += req(1, 1, 0, 5, 0x77)
    for clock, pn_sel in [(2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (2, 2), (3, 2)]:
        s += req(1, clock, pn_sel, 5, 0x77)
    write("relay", "finding-mac-change", bytes(s))

    # Three downstream ports. lan1 flooded to its share (+1 of slack), a new client on lan2, the
    # same client then on lan1: the free entries no longer cover lan2 and lan3's unused shares.
    s = bytearray([0x10, B_TIMEOUT10_RATE16]) + HEADER_TAIL
    s += bytes([12, 1, 3, 252, 0, 0x40])
    s += req(2, 1, 0, 0, 0)
    s += req(1, 1, 0, 0, 0)
    write("relay", "finding-share-move", bytes(s))


def config_seeds():
    shipped = (ROOT / "rootfs-overlay" / "etc" / "ptpproxy" / "config.json").read_bytes()
    write("config_parse", "shipped", shipped)
    variants = {
        "minimal": b'{"upstream": "eth0", "downstream": ["lan1"]}',
        "full": b'{"upstream": "eth0", "downstream": ["lan1", "lan2", "lan3"], "domains": [0, 24, 254],'
                b' "delay_resp": "unicast", "correction": "none", "allow_downstream_masters": true,'
                b' "client_timeout_s": 3600, "max_delay_req_rate": 1024,'
                b' "status_file": "/var/run/ptpproxy/status.json", "status_interval_s": 1,'
                b' "promiscuous": true}',
        "bom": b'\xef\xbb\xbf{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "flood"}',
        "bad-mode": b'{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "sideways"}',
        "unknown-key": b'{"upstream": "eth0", "downstream": ["lan1"], "colour": "blue"}',
        "escapes": b'{"upstream": "eth\\u0030", "downstream": ["lan\\"1"]}',
        "nested": b'{"upstream": "eth0", "downstream": [["lan1"]], "domains": [256, -1, 1e3]}',
    }
    for name, text in variants.items():
        write("config_parse", name, text)


def main():
    for target in ("wire_roundtrip", "relay", "config_parse"):
        d = SEEDS / target
        if d.is_dir():
            for f in d.iterdir():
                f.unlink()
    captures, by_transport = [], {}
    for transport in ("l2", "udp4", "udp6"):
        merged = []
        for port, name in enumerate(("up", "dn1", "dn2")):
            frames = read_pcap(REPLAY / transport / f"{name}.pcap")
            captures.append((transport, name, frames))
            merged += [(t, port, f) for t, f in frames]
        merged.sort(key=lambda e: (e[0], e[1]))
        by_transport[transport] = merged
    wire_seeds(captures)
    relay_seeds(by_transport)
    finding_seeds()
    config_seeds()
    for target in sorted(p.name for p in SEEDS.iterdir() if p.is_dir()):
        files = list((SEEDS / target).iterdir())
        print(f"{target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
