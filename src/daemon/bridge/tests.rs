//! Which mechanism is chosen and what each change does, with the system calls recorded instead
//! of made.

use super::*;
use std::cell::RefCell;

thread_local! {
    /// What the fake system was asked, in order.
    static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The port whose tc install the fake kernel refuses as unsupported.
    static REFUSE: RefCell<Option<&'static str>> = const { RefCell::new(None) };
}

fn record(call: String) {
    CALLS.with(|c| c.borrow_mut().push(call));
}

fn calls() -> Vec<String> {
    CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

const FAKE: Ops = Ops {
    tc_install: |port| {
        record(format!("tc install {port}"));
        match REFUSE.with(|r| *r.borrow()) {
            Some(p) if p == port => Err(tc::TcError::Unsupported(
                tc::Step::Filter,
                nix::errno::Errno::ENOENT,
            )),
            _ => Ok(()),
        }
    },
    tc_remove: |port| {
        record(format!("tc remove {port}"));
        Ok(())
    },
    nft: |script, _| {
        let first = script.lines().find(|l| l.contains("elements"));
        record(match first {
            Some(l) => format!("nft install {}", l.trim()),
            None => "nft remove".to_owned(),
        });
        Ok(())
    },
    nft_present: || true,
};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn member(name: &str, offloaded: bool) -> (String, Bridging) {
    let bridge = "br0".to_owned();
    (name.to_owned(), Bridging::Member { bridge, offloaded })
}

#[test]
fn auto_uses_tc_only_where_the_hardware_forwards() {
    let wanted = names(&["lan1", "lan2"]);
    let soft = vec![member("lan1", false), member("lan2", false)];
    let mixed = vec![member("lan1", false), member("lan2", true)];
    assert_eq!(choose(BridgeFilter::Auto, &soft, &wanted), Kind::Nftables);
    assert_eq!(choose(BridgeFilter::Auto, &mixed, &wanted), Kind::Tc);
    assert_eq!(choose(BridgeFilter::Tc, &soft, &wanted), Kind::Tc);
    assert_eq!(
        choose(BridgeFilter::Nftables, &mixed, &wanted),
        Kind::Nftables
    );
    // A switchdev port that is not relayed does not count.
    assert_eq!(
        choose(BridgeFilter::Auto, &mixed, &names(&["lan1"])),
        Kind::Nftables
    );
}

#[test]
fn tc_is_installed_per_port_reported_and_removed() {
    calls();
    let mut b = Bridges::with_ops(FAKE);
    let change = b.apply(&names(&["lan1", "lan2"]), Kind::Tc, true);
    assert!(matches!(change, Change::Installed(Kind::Tc, _)));
    assert_eq!(calls(), ["tc install lan1", "tc install lan2"]);
    assert_eq!(b.filter_kind("lan2"), "tc");
    assert_eq!(b.filter_kind("eth0"), "");
    // A port leaves: only it loses its filters; the others are replaced in place.
    b.apply(&names(&["lan2", "lan3"]), Kind::Tc, true);
    assert_eq!(
        calls(),
        ["tc remove lan1", "tc install lan2", "tc install lan3"]
    );
    assert!(matches!(b.remove(), Some(Ok(()))));
    assert_eq!(calls(), ["tc remove lan2", "tc remove lan3"]);
    assert!(!b.installed());
    assert!(b.remove().is_none());
}

#[test]
fn unsupported_tc_falls_back_to_nftables_in_auto_only() {
    calls();
    REFUSE.with(|r| *r.borrow_mut() = Some("lan2"));
    let mut b = Bridges::with_ops(FAKE);
    let change = b.apply(&names(&["lan1", "lan2"]), Kind::Tc, true);
    assert!(matches!(change, Change::FellBack(..)), "auto falls back");
    assert_eq!(
        calls(),
        [
            "tc install lan1",
            "tc install lan2",
            "tc remove lan1",
            "nft install elements = { \"lan1\", \"lan2\" }"
        ]
    );
    assert_eq!(b.filter_kind("lan1"), "nftables");
    assert!(b.tc_unsupported);
    assert!(matches!(b.remove(), Some(Ok(()))));
    assert_eq!(calls(), ["nft remove"]);

    // Forced: the refusal is the answer, nothing stays installed.
    let mut b = Bridges::with_ops(FAKE);
    let change = b.apply(&names(&["lan1", "lan2"]), Kind::Tc, false);
    match change {
        Change::Failed(text) => assert!(text.starts_with("lan2: tc adding a flower"), "{text}"),
        _ => panic!("forced tc must fail"),
    }
    assert_eq!(
        calls(),
        ["tc install lan1", "tc install lan2", "tc remove lan1"]
    );
    assert!(!b.installed());
    assert!(b.tc_unsupported, "not retried every few seconds");
    // Refused while filters of before were there: those go too, none is listed.
    b.tc_unsupported = false;
    REFUSE.with(|r| *r.borrow_mut() = None);
    b.apply(&names(&["lan1", "lan3"]), Kind::Tc, false);
    calls();
    REFUSE.with(|r| *r.borrow_mut() = Some("lan2"));
    assert!(matches!(
        b.apply(&names(&["lan1", "lan2", "lan3"]), Kind::Tc, false),
        Change::Failed(_)
    ));
    assert_eq!(
        calls(),
        [
            "tc install lan1",
            "tc install lan2",
            "tc remove lan1",
            "tc remove lan1",
            "tc remove lan3"
        ]
    );
    assert!(!b.installed());
    REFUSE.with(|r| *r.borrow_mut() = None);
}

#[test]
fn switching_mechanism_removes_the_other_first() {
    calls();
    let mut b = Bridges::with_ops(FAKE);
    b.apply(&names(&["lan1", "lan2"]), Kind::Nftables, true);
    assert_eq!(calls(), ["nft install elements = { \"lan1\", \"lan2\" }"]);
    b.apply(&names(&["lan1", "lan2"]), Kind::Tc, true);
    assert_eq!(
        calls(),
        ["nft remove", "tc install lan1", "tc install lan2"]
    );
    let change = b.apply(&[], Kind::Nftables, true);
    assert!(matches!(change, Change::Removed(Kind::Tc)));
    assert_eq!(calls(), ["tc remove lan1", "tc remove lan2"]);
}

#[test]
fn the_nftables_table_shrinks_in_one_transaction() {
    calls();
    let mut b = Bridges::with_ops(FAKE);
    b.apply(&names(&["lan1", "lan2", "lan3"]), Kind::Nftables, true);
    calls();
    // lan1 no longer relayed: the table is replaced, never removed first (that would leave the
    // bridge forwarding PTP between the two runs).
    b.apply(&names(&["lan2", "lan3"]), Kind::Nftables, true);
    assert_eq!(calls(), ["nft install elements = { \"lan2\", \"lan3\" }"]);
    assert_eq!(b.filter_kind("lan1"), "");
    assert_eq!(b.filter_kind("lan2"), "nftables");
}

#[test]
fn tc_that_works_again_is_followed_again() {
    calls();
    REFUSE.with(|r| *r.borrow_mut() = Some("lan2"));
    let mut b = Bridges::with_ops(FAKE);
    assert!(matches!(
        b.apply(&names(&["lan1", "lan2"]), Kind::Tc, false),
        Change::Failed(_)
    ));
    assert!(b.tc_unsupported);
    // A reload retries, and tc takes it now: membership changes count again.
    REFUSE.with(|r| *r.borrow_mut() = None);
    assert!(matches!(
        b.apply(&names(&["lan1", "lan2"]), Kind::Tc, false),
        Change::Installed(Kind::Tc, _)
    ));
    assert!(!b.tc_unsupported);
}
