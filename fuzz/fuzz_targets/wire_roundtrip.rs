//! Arbitrary bytes into every wire view. No view may panic after `new_checked`; a frame that
//! `PtpFrame::parse` accepts must agree with its bytes layer by layer, survive
//! parse -> emit -> parse of its PTP header unchanged, keep parsing the same after the rewrites
//! the relay does (destination MAC, UDP checksum, header setters), and a completed UDP
//! checksum must verify. The plain-value representations agree with the views: every header's
//! `*Repr` parse -> emit gives back its bytes, and a whole frame parsed into a `PtpFrameRepr`
//! and emitted again is the same frame (in its canonical form: no IPv4 options, no bytes between
//! the UDP datagram and the IP packet's end, zero padding).
//!
//! The input is tried as is, and, when it carries an IPv4 header, once more with that header's
//! checksum made valid, so that mutations of IPv4 fields reach the layers behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptpproxy::stats::DropReason;
use ptpproxy::wire::ethernet::FrameRepr;
use ptpproxy::wire::ip::{
    self, checksum_fold, sum_words, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpChecksum,
    UdpDatagram, UdpRepr,
};
use ptpproxy::wire::ptp::{self, HeaderRepr, MessageRepr, MessageType};
use ptpproxy::wire::{ethernet, PortIdentity, PtpFrame, PtpFrameRepr, Transport, TransportRepr};
use ptpproxy_fuzz::{udp_checksum_verifies, udp_of};
use std::fmt::Write;

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_valid_ipv4_checksum(data) {
        check(&fixed);
    }
});

fn check(data: &[u8]) {
    raw_views(data);
    match PtpFrame::parse(data) {
        Ok(p) => parsed(data, &p),
        Err(e) => {
            let mut s = String::new();
            write!(s, "{e}").unwrap();
            assert!(!DropReason::from(e).name().is_empty());
        }
    }
}

/// If the frame holds an IPv4 header (after at most one tag), a copy with its checksum fixed.
fn with_valid_ipv4_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let l3 = match data.get(12..14)? {
        [0x08, 0x00] => 14,
        [0x81, 0x00] if data.get(16..18)? == [0x08, 0x00] => 18,
        _ => return None,
    };
    let ihl = usize::from(data.get(l3)? & 0x0F) * 4;
    if ihl < 20 || data.len() < l3 + ihl {
        return None;
    }
    let mut f = data.to_vec();
    f[l3 + 10..l3 + 12].fill(0);
    let c = !checksum_fold(sum_words(&f[l3..l3 + ihl]));
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    (f != data).then_some(f)
}

/// Every view's `new_checked`, at every offset a header can start at, then all its accessors.
fn raw_views(data: &[u8]) {
    if let Ok(e) = ethernet::Frame::new_checked(data) {
        let (dst, src) = (e.dst(), e.src());
        assert_eq!(dst.0, data[0..6]);
        assert_eq!(src.0, data[6..12]);
        let mut s = String::new();
        write!(s, "{dst} {src} {:?}", e.ethertype()).unwrap();
        let hl = e.header_len();
        assert_eq!(e.vlan().is_some(), hl == 18);
        assert!(hl == 14 || hl == 18);
        assert_eq!(e.payload().len(), data.len() - hl);
        let _ = dst.is_multicast();
        let repr = FrameRepr::parse(&e).expect("a checked frame has a representation");
        assert_eq!(repr.header_len(), hl);
        let mut out = [0u8; 18];
        repr.emit(&mut out);
        assert_eq!(out[..hl], data[..hl]);
    }
    for off in [0usize, 14, 18, 34, 38, 42, 54, 62] {
        let Some(b) = data.get(off..) else { break };
        if let Ok(v4) = Ipv4Packet::new_checked(b) {
            let hl = v4.header_len();
            assert!(hl >= 20 && hl <= v4.total_len() && v4.total_len() <= b.len());
            let _ = (v4.protocol(), v4.src(), v4.dst());
            // Emitted without options and without the reserved flag bit; otherwise the same.
            let repr = Ipv4Repr::parse(&v4).expect("a checked header has a representation");
            assert_eq!(repr.buffer_len() + hl - 20, v4.total_len());
            let mut out = [0u8; 20];
            repr.emit(&mut out);
            // (A header checksum of 0xFFFF verifies as well as the 0x0000 emit computes.)
            if hl == 20 && b[6] & 0x80 == 0 && b[10..12] != [0xff, 0xff] {
                assert_eq!(out, b[..20]);
            }
            assert_eq!(
                Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&out[..])),
                Ok(repr)
            );
        }
        if let Ok(v6) = Ipv6Packet::new_checked(b) {
            assert!(ip::IPV6_HEADER_LEN + v6.payload_len() <= b.len());
            let _ = (v6.next_header(), v6.src(), v6.dst());
            let _ = ip::is_ipv6_extension(v6.next_header());
            let repr = Ipv6Repr::parse(&v6).expect("a checked header has a representation");
            let mut out = [0u8; 40];
            repr.emit(&mut out);
            assert_eq!(out, b[..40]);
        }
        if let Ok(u) = UdpDatagram::new_checked(b) {
            assert!(u.len() >= ip::UDP_HEADER_LEN && u.len() <= b.len());
            let _ = (u.dst_port(), u.checksum(), u.is_empty());
            let repr = UdpRepr::parse(&u).expect("a checked header has a representation");
            assert_eq!(repr.buffer_len(), u.len());
            let mut out = b[..u.len()].to_vec();
            out[..8].fill(0);
            repr.emit(&mut out, 0, UdpChecksum::Fixed(u.checksum()));
            assert_eq!(out, b[..u.len()]);
        }
        if let Ok(h) = ptp::Header::new_checked(b) {
            header_accessors(&h, b);
        }
    }
}

/// All accessors of a checked PTP header agree with its bytes; HeaderRepr round-trips the bytes.
fn header_accessors(h: &ptp::Header<&[u8]>, b: &[u8]) {
    let t = h.message_type();
    assert_eq!(t, MessageType::from_nibble(b[0]));
    assert_eq!(h.version(), 2);
    assert_eq!(h.major_sdo_id(), b[0] >> 4);
    let len = usize::from(h.message_length());
    assert!(len >= t.min_len() && len >= ptp::HEADER_LEN && len <= b.len());
    assert_eq!(h.domain_number(), b[4]);
    assert_eq!(h.flags(), u16::from_be_bytes([b[6], b[7]]));
    assert_eq!(h.two_step(), b[6] & 2 != 0);
    assert_eq!(h.correction().to_be_bytes(), b[8..16]);
    let id = h.source_port_identity();
    assert_eq!(id, PortIdentity::from_bytes(b[20..30].try_into().unwrap()));
    assert_eq!(h.sequence_id(), u16::from_be_bytes([b[30], b[31]]));
    assert_eq!(h.log_message_interval() as u8, b[33]);
    let _ = t.is_event();
    match (t, h.requesting_port_identity()) {
        (MessageType::DelayResp | MessageType::PdelayResp, Some(r)) => {
            assert!(len >= 54);
            assert_eq!(r, PortIdentity::from_bytes(b[44..54].try_into().unwrap()));
        }
        (MessageType::DelayResp | MessageType::PdelayResp, None) => panic!("no requester"),
        (_, r) => assert_eq!(r, None),
    }
    let mut s = String::new();
    write!(s, "{id}").unwrap();

    // parse -> emit reproduces the 34 header bytes exactly, into a copy and into a blank buffer.
    let repr = HeaderRepr::parse(h);
    let mut copy = b.to_vec();
    repr.emit(&mut copy);
    assert_eq!(copy, b);
    let mut blank = [0u8; ptp::HEADER_LEN];
    repr.emit(&mut blank);
    assert_eq!(blank, b[..ptp::HEADER_LEN]);
    assert_eq!(
        HeaderRepr::parse(&ptp::Header::new_unchecked(&blank[..])),
        repr
    );
}

fn parsed(data: &[u8], p: &PtpFrame) {
    // Layer by layer, the parse agrees with the bytes.
    assert_eq!(p.dst.0, data[0..6]);
    assert_eq!(p.src.0, data[6..12]);
    let tagged = data[12..14] == [0x81, 0x00];
    assert_eq!(
        p.vlan,
        tagged.then(|| u16::from_be_bytes([data[14], data[15]]))
    );
    let l3 = if tagged { 18 } else { 14 };
    let ptp_end = p.ptp_offset + p.ptp_len;
    assert!(ptp_end <= data.len());
    let needed = match p.transport {
        Transport::L2 => {
            assert_eq!(data[l3 - 2..l3], [0x88, 0xf7]);
            assert_eq!((p.udp_offset, p.ptp_offset), (None, l3));
            ptp_end
        }
        Transport::Udp4 { src, dst } => {
            assert_eq!(data[l3 - 2..l3], [0x08, 0x00]);
            let v4 = Ipv4Packet::new_checked(&data[l3..]).expect("IPv4 header");
            assert_eq!(
                (v4.src(), v4.dst(), v4.protocol()),
                (src, dst, ip::PROTOCOL_UDP)
            );
            let u = l3 + v4.header_len();
            assert_eq!((p.udp_offset, p.ptp_offset), (Some(u), u + 8));
            let udp = UdpDatagram::new_checked(&data[u..l3 + v4.total_len()]).expect("UDP");
            assert!(matches!(udp.dst_port(), 319 | 320));
            assert!(ptp_end <= u + udp.len(), "message beyond the UDP datagram");
            ptp_end.max(l3 + v4.total_len())
        }
        Transport::Udp6 { src, dst } => {
            assert_eq!(data[l3 - 2..l3], [0x86, 0xdd]);
            let v6 = Ipv6Packet::new_checked(&data[l3..]).expect("IPv6 header");
            assert_eq!(
                (v6.src(), v6.dst(), v6.next_header()),
                (src, dst, ip::PROTOCOL_UDP)
            );
            let u = l3 + ip::IPV6_HEADER_LEN;
            assert_eq!((p.udp_offset, p.ptp_offset), (Some(u), u + 8));
            let udp = UdpDatagram::new_checked(&data[u..u + v6.payload_len()]).expect("UDP");
            assert!(matches!(udp.dst_port(), 319 | 320));
            assert!(ptp_end <= u + udp.len(), "message beyond the UDP datagram");
            ptp_end.max(u + v6.payload_len())
        }
    };
    let _ = p.transport.is_multicast();

    // The message: checked, consistent with the frame, every accessor sound.
    let h = p
        .ptp(data)
        .expect("a parsed frame's message must be readable");
    assert_eq!(usize::from(h.message_length()), p.ptp_len);
    header_accessors(&h, &data[p.ptp_offset..ptp_end]);
    assert_eq!(
        p.ptp(&data[..ptp_end - 1]).err(),
        Some(ptpproxy::wire::Error::Truncated)
    );

    // What follows the frame's last needed byte is padding; one byte less is not a frame.
    assert_eq!(PtpFrame::parse(&data[..needed]), Ok(*p));
    assert!(PtpFrame::parse(&data[..needed - 1]).is_err());

    // Re-emit the header with other values in the fields that do not affect parsing: the frame
    // parses the same, the header reads back the new values, and the setters agree.
    let repr = HeaderRepr::parse(&h);
    let mut changed = repr;
    changed.domain_number ^= data[data.len() - 1];
    changed.minor_sdo_id = !changed.minor_sdo_id;
    changed.flags = changed.flags.rotate_left(3);
    changed.correction = changed.correction.wrapping_neg() ^ 0x5a5a;
    changed.message_type_specific = [1, 2, 3, 4];
    changed.source_port_identity.port_number = !changed.source_port_identity.port_number;
    changed.sequence_id = changed.sequence_id.wrapping_add(1);
    changed.control ^= 0xff;
    changed.log_message_interval = changed.log_message_interval.wrapping_sub(1);
    let mut copy = data.to_vec();
    changed.emit(&mut copy[p.ptp_offset..]);
    assert_eq!(copy[..p.ptp_offset], data[..p.ptp_offset]);
    assert_eq!(
        copy[p.ptp_offset + ptp::HEADER_LEN..],
        data[p.ptp_offset + ptp::HEADER_LEN..]
    );
    // (Only the domainNumber and the minorSdoId, which the parsed frame keeps, read back changed.)
    let same_but_domain = PtpFrame {
        domain_number: changed.domain_number,
        sdo_id: (p.sdo_id & 0xff00) | u16::from(changed.minor_sdo_id),
        ..*p
    };
    assert_eq!(PtpFrame::parse(&copy), Ok(same_but_domain));
    assert_eq!(HeaderRepr::parse(&p.ptp(&copy).unwrap()), changed);
    let mut via_setters = data.to_vec();
    {
        let mut w = ptp::Header::new_unchecked(&mut via_setters[p.ptp_offset..ptp_end]);
        w.set_domain_number(changed.domain_number);
        w.set_correction(changed.correction);
        w.set_sequence_id(changed.sequence_id);
    }
    let r = HeaderRepr::parse(&p.ptp(&via_setters).unwrap());
    assert_eq!(
        (r.domain_number, r.correction, r.sequence_id),
        (
            changed.domain_number,
            changed.correction,
            changed.sequence_id
        )
    );
    assert_eq!(
        HeaderRepr {
            domain_number: repr.domain_number,
            correction: repr.correction,
            sequence_id: repr.sequence_id,
            ..r
        },
        repr
    );

    // A new destination MAC changes only the destination.
    let mut copy = data.to_vec();
    let new_dst = ptpproxy::wire::EthernetAddress([0x02, 0, 0, 0, 0x01, data[0]]);
    ethernet::Frame::new_unchecked(&mut copy[..]).set_dst(new_dst);
    assert_eq!(copy[6..], data[6..]);
    assert_eq!(PtpFrame::parse(&copy), Ok(PtpFrame { dst: new_dst, ..*p }));

    udp_checksum(data, p);
    frame_repr(data, p);
}

/// The whole frame as plain values: parse -> emit -> parse is the identity (lengths derived),
/// the emitted frame reads as the same PTP frame with the same message bytes, and emitting it
/// again changes nothing.
fn frame_repr(data: &[u8], p: &PtpFrame) {
    let repr = PtpFrameRepr::parse(data).expect("a parsed frame has a representation");
    let out = emit(&repr);
    let q = PtpFrame::parse(&out).expect("an emitted frame parses");
    assert_eq!(
        (q.dst, q.src, q.vlan, q.transport, q.ptp_len),
        (p.dst, p.src, p.vlan, p.transport, p.ptp_len)
    );
    let mut message = data[p.ptp_offset..p.ptp_offset + p.ptp_len].to_vec();
    let mut expected = repr.with_derived_lengths();
    let reserved_dropped = repr.message.message_type() == MessageType::Announce && message[46] != 0;
    if reserved_dropped {
        // Announce's reserved octet is not represented and emitted as zero: a checksum that was
        // wrong may now happen to be right.
        message[46] = 0;
        if let Ok(PtpFrameRepr {
            transport: TransportRepr::Udp4 { checksum, .. } | TransportRepr::Udp6 { checksum, .. },
            ..
        }) = PtpFrameRepr::parse(&out)
        {
            expected = expected.with_udp_checksum(checksum);
        }
    }
    assert_eq!(PtpFrameRepr::parse(&out), Ok(expected));
    assert_eq!(out[q.ptp_offset..q.ptp_offset + q.ptp_len], message);
    assert_eq!(MessageRepr::parse(&q.ptp(&out).unwrap()), Ok(repr.message));
    assert_eq!(
        (q.udp_offset.is_some(), p.udp_checksum_is_partial(data)),
        (p.udp_offset.is_some(), q.udp_checksum_is_partial(&out))
    );
    if udp_checksum_verifies(p, data) && !reserved_dropped {
        assert!(udp_checksum_verifies(&q, &out));
    }
    let again = PtpFrameRepr::parse(&out).unwrap();
    assert_eq!(emit(&again), out);
    // Emitting over other bytes leaves no trace of them.
    let mut dirty = vec![0xa5u8; out.len() + 3];
    assert_eq!(repr.emit(&mut dirty), out.len());
    assert_eq!(dirty[..out.len()], out);
}

fn emit(repr: &PtpFrameRepr) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out), out.len());
    out
}

fn udp_checksum(data: &[u8], p: &PtpFrame) {
    let mut copy = data.to_vec();
    let Some((r, pseudo)) = udp_of(p, data) else {
        // L2: nothing to complete, nothing partial.
        assert!(!p.udp_checksum_is_partial(data));
        p.complete_udp_checksum(&mut copy);
        assert_eq!(copy, data);
        return;
    };
    let at = r.start + 6;
    let field = u16::from_be_bytes([data[at], data[at + 1]]);
    let partial = field != 0 && field == checksum_fold(pseudo);
    assert_eq!(
        p.udp_checksum_is_partial(data),
        partial,
        "field {field:#06x}"
    );

    p.complete_udp_checksum(&mut copy);
    assert_eq!(copy[..at], data[..at]);
    assert_eq!(copy[at + 2..], data[at + 2..]);
    assert!(
        udp_checksum_verifies(p, &copy),
        "completed checksum does not verify"
    );
    let done = u16::from_be_bytes([copy[at], copy[at + 1]]);
    assert_ne!(done, 0, "a computed zero is sent as 0xFFFF");
    // Still "partial" only if the complete checksum happens to equal the pseudo-header sum.
    assert_eq!(
        p.udp_checksum_is_partial(&copy),
        done == checksum_fold(pseudo)
    );
    assert_eq!(PtpFrame::parse(&copy), Ok(*p));
    // Idempotent; and a frame whose checksum already verified keeps it bit for bit, unless it
    // was 0x0000/0xFFFF (the two spellings of a computed zero).
    let mut again = copy.clone();
    p.complete_udp_checksum(&mut again);
    assert_eq!(again, copy);
    if udp_checksum_verifies(p, data) && field != 0 && field != 0xFFFF {
        assert_eq!(copy, data);
    }
}
