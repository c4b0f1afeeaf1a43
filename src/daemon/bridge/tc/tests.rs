//! The encoding against requests iproute2 sent for the same filters (captured with
//! `strace -e sendmsg -xx tc filter add dev lo ingress chain 0 prio P protocol X flower ...
//! action trap`, ifindex 1), and the parsing of the kernel's answers.

use super::*;

/// Bytes written as hex pairs (spaces ignored).
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The netlink header and tcmsg iproute2 sent, with sequence number 7.
fn head(len: u16, kind: u16, flags: u16, handle: u32, parent: u32, info: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u32::from(len).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&7u32.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&[0; 4]);
    for w in [1u32, handle, parent, info] {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    v
}

/// The gact trap action list, byte for byte as iproute2 encodes `action trap`.
const TRAP: &str = "30000300 2c000100 09000100 67616374 00000000 1c000280 18000200
                    00000000 00000000 08000000 00000000 00000000";
const CREATE: u16 = 0x1 | 0x4 | 0x200 | 0x400;

#[cfg(target_endian = "little")]
#[test]
fn the_qdisc_request_is_iproute2s() {
    let mut expected = head(48, 36, CREATE, 0xFFFF_0000, 0xFFFF_FFF1, 0);
    expected.extend(hex("0b000100 636c7361 63740000"));
    assert_eq!(qdisc_request(1).bytes(7), &expected[..]);
}

#[cfg(target_endian = "little")]
#[test]
fn the_ethertype_filter_is_iproute2s() {
    // tcm_info 3235837832 = 0xC0DE_F788: priority 0xC0DE, protocol 0x88F7 in network order.
    let mut expected = head(124, 44, CREATE, 0, 0xFFFF_FFF2, 3_235_837_832);
    expected.extend(hex("08000b00 00000000 0b000100 666c6f77 65720000 44000200"));
    expected.extend(hex(TRAP));
    expected.extend(hex("08001600 00000000 06000800 88f70000"));
    assert_eq!(filter_request(1, 0).bytes(7), &expected[..]);
}

#[cfg(target_endian = "little")]
#[test]
fn the_vlan_filter_is_iproute2s() {
    // Priority 0xC0DF, protocol 802.1Q; vlan_ethtype 0x88F7 (captured at prio 49375).
    let mut expected = head(132, 44, CREATE, 0, 0xFFFF_FFF2, 3_235_840_129);
    expected.extend(hex("08000b00 00000000 0b000100 666c6f77 65720000 4c000200"));
    expected.extend(hex("06001900 88f70000"));
    expected.extend(hex(TRAP));
    expected.extend(hex("08001600 00000000 06000800 81000000"));
    assert_eq!(filter_request(1, 1).bytes(7), &expected[..]);
}

#[cfg(target_endian = "little")]
#[test]
fn the_udpv4_filter_is_iproute2s() {
    // `protocol ip flower ip_proto udp dst_ip 224.0.1.129 dst_port 319`, at our priority 0xC0E0.
    let info = u32::from(PRIO_BASE + 2) << 16 | 0x0008;
    let mut expected = head(156, 44, CREATE, 0, 0xFFFF_FFF2, info);
    expected.extend(hex("08000b00 00000000 0b000100 666c6f77 65720000 64000200"));
    expected.extend(hex(
        "05000900 11000000 08000c00 e0000181 08000d00 ffffffff 06001500 013f0000",
    ));
    expected.extend(hex(TRAP));
    expected.extend(hex("08001600 00000000 06000800 08000000"));
    assert_eq!(filter_request(1, 2).bytes(7), &expected[..]);
}

#[cfg(target_endian = "little")]
#[test]
fn the_tagged_udpv4_filter_is_iproute2s() {
    // `protocol 802.1Q flower vlan_ethtype ipv4 ip_proto udp dst_ip 224.0.1.129 dst_port 319`,
    // at our priority 0xC0E8 (tcm_info 3236429953 = 0xC0E8_8100).
    let mut expected = head(164, 44, CREATE, 0, 0xFFFF_FFF2, 3_236_429_953);
    expected.extend(hex("08000b00 00000000 0b000100 666c6f77 65720000 6c000200"));
    expected.extend(hex(
        "06001900 08000000 05000900 11000000 08000c00 e0000181 08000d00 ffffffff
         06001500 013f0000",
    ));
    expected.extend(hex(TRAP));
    expected.extend(hex("08001600 00000000 06000800 81000000"));
    assert_eq!(filter_request(1, 10).bytes(7), &expected[..]);
}

#[test]
fn every_udp_filter_has_a_tagged_twin() {
    let untagged: Vec<Match> = MATCHES[2..10].to_vec();
    let tagged: Vec<Match> = MATCHES[10..]
        .iter()
        .map(|m| match *m {
            Match::V4 { group, port, .. } => Match::V4 {
                group,
                port,
                tagged: false,
            },
            Match::V6 {
                group, mask, port, ..
            } => Match::V6 {
                group,
                mask,
                port,
                tagged: false,
            },
            other => other,
        })
        .collect();
    assert_eq!(untagged, tagged);
    assert!(MATCHES[10..].iter().all(|m| matches!(
        m,
        Match::V4 { tagged: true, .. } | Match::V6 { tagged: true, .. }
    )));
    // A tagged IPv6 filter: outer 802.1Q, inner IPv6 first among the keys.
    let mut r = filter_request(3, 14);
    let b = r.bytes(1).to_vec();
    assert_eq!(&b[b.len() - 8..], &[6, 0, 8, 0, 0x81, 0, 0, 0]);
    let keys = 16 + 20 + 8 + 12 + 4;
    assert_eq!(&b[keys..keys + 8], &[6, 0, 25, 0, 0x86, 0xdd, 0, 0]);
}

#[test]
fn the_udpv6_filters_mask_only_the_scope() {
    let mut r = filter_request(3, 6);
    let b = r.bytes(1).to_vec();
    // IPV6_DST (16) then IPV6_DST_MASK (17), after the 8-byte IP_PROTO attribute.
    let at = 16 + 20 + 8 + 12 + 4 + 8;
    assert_eq!(&b[at..at + 4], &[20, 0, 16, 0]);
    assert_eq!(&b[at + 4..at + 20], &V6_PRIMARY);
    assert_eq!(&b[at + 20..at + 24], &[20, 0, 17, 0]);
    assert_eq!(b[at + 25], 0xf0, "the scope nibble is free");
    assert_eq!(&b[at + 40..at + 44], &[6, 0, 21, 0]);
    assert_eq!(&b[at + 44..at + 46], &319u16.to_be_bytes());
    assert!(b.len() <= 256);
    // Every filter fits the buffer and names its own priority.
    for i in 0..MATCHES.len() {
        let mut r = filter_request(3, i);
        let b = r.bytes(1);
        assert_eq!(usize::from(u16::from_ne_bytes([b[0], b[1]])), b.len());
        assert_eq!(u16::from_ne_bytes([b[34], b[35]]), PRIO_BASE + i as u16);
    }
}

#[test]
fn deletion_names_only_our_priority() {
    let mut r = delete_request(5, 9);
    let b = r.bytes(2);
    assert_eq!(b.len(), 16 + 20 + 8);
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 45);
    assert_eq!(
        u16::from_ne_bytes([b[6], b[7]]),
        0x5,
        "request and ACK, nothing else"
    );
    assert_eq!(
        u32::from_ne_bytes(b[32..36].try_into().unwrap()),
        u32::from(PRIO_BASE + 9) << 16
    );
}

fn error_message(seq: u32, code: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&36u32.to_ne_bytes());
    v.extend_from_slice(&2u16.to_ne_bytes());
    v.extend_from_slice(&0u16.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&code.to_ne_bytes());
    v.extend_from_slice(&[0; 16]);
    v
}

#[test]
fn answers_become_typed_errors() {
    assert_eq!(ack(&error_message(4, 0), 4), Some(Ok(())));
    assert_eq!(ack(&error_message(4, -2), 4), Some(Err(Errno::ENOENT)));
    assert_eq!(
        ack(&error_message(3, 0), 4),
        None,
        "another request's answer"
    );
    let mut two = error_message(3, -1);
    two.extend(error_message(4, -95));
    assert_eq!(ack(&two, 4), Some(Err(Errno::EOPNOTSUPP)));
    assert_eq!(ack(&two[..20], 4), None, "truncated");
    assert_eq!(ack(&[0xff; 40], 4), None, "garbage");
    assert!(matches!(
        classify(Step::Filter, Errno::ENOENT),
        TcError::Unsupported(..)
    ));
    assert!(matches!(
        classify(Step::Qdisc, Errno::EOPNOTSUPP),
        TcError::Unsupported(..)
    ));
    assert_eq!(
        classify(Step::Filter, Errno::EPERM),
        TcError::Permission(Step::Filter)
    );
    assert_eq!(
        classify(Step::Filter, Errno::EBUSY),
        TcError::Kernel(Step::Filter, Errno::EBUSY)
    );
}
