//! What the kernel says about each configured port's place in a Linux bridge (read from sysfs),
//! and the checks that turn a nonsensical combination into one line naming the ports.
//!
//! Detection only reads `/sys/class/net`; the checks are pure functions of what was read, so
//! they are tested without a bridge. Nothing here changes the system.

use std::fmt;
use std::path::{Path, PathBuf};

/// A port's relation to a Linux bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bridging {
    /// The interface does not exist (yet): nothing to say about it.
    Absent,
    /// Neither a bridge nor a bridge port.
    Standalone,
    /// A port of `bridge`; `offloaded`: a switchdev port (`phys_switch_id` readable), whose
    /// switch may forward PTP in hardware without the software bridge ever seeing it.
    Member { bridge: String, offloaded: bool },
    /// The bridge device itself; `snooping`: IGMP/MLD snooping is on.
    Device { snooping: bool },
}

impl Bridging {
    /// The bridge this port is a member of.
    pub fn bridge(&self) -> Option<&str> {
        match self {
            Bridging::Member { bridge, .. } => Some(bridge),
            _ => None,
        }
    }
}

impl fmt::Display for Bridging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bridging::Absent => f.write_str("absent"),
            Bridging::Standalone => f.write_str("not bridged"),
            Bridging::Member {
                bridge,
                offloaded: false,
            } => write!(f, "member of {bridge}"),
            Bridging::Member {
                bridge,
                offloaded: true,
            } => write!(f, "member of {bridge} (switchdev)"),
            Bridging::Device { snooping: false } => f.write_str("bridge device"),
            Bridging::Device { snooping: true } => {
                f.write_str("bridge device (multicast snooping on)")
            }
        }
    }
}

/// Where the kernel's interfaces are described.
pub const SYSFS_NET: &str = "/sys/class/net";

/// Read `name`'s bridging from `root` (normally [`SYSFS_NET`]).
pub fn detect(root: &Path, name: &str) -> Bridging {
    let dir = root.join(name);
    if !dir.exists() {
        return Bridging::Absent;
    }
    if dir.join("bridge").is_dir() {
        let snooping = read_trimmed(&dir.join("bridge/multicast_snooping")).as_deref() == Some("1");
        return Bridging::Device { snooping };
    }
    if dir.join("brport").is_dir() {
        let master: PathBuf = std::fs::read_link(dir.join("master"))
            .or_else(|_| std::fs::read_link(dir.join("brport/bridge")))
            .unwrap_or_default();
        let bridge = master
            .file_name()
            .map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned());
        // Reading phys_switch_id fails (EOPNOTSUPP) on ports no switch driver backs.
        let offloaded = read_trimmed(&dir.join("phys_switch_id")).is_some_and(|s| !s.is_empty());
        return Bridging::Member { bridge, offloaded };
    }
    Bridging::Standalone
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// One result of [`check`]: an error refuses the configuration, a warning is logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub error: bool,
    pub text: String,
}

fn error(text: String) -> Finding {
    Finding { error: true, text }
}

fn warning(text: String) -> Finding {
    Finding { error: false, text }
}

/// The relayed ports that are members of a bridge of which ptpproxy relays at least one other
/// member: the bridge would forward PTP between them as well. In port order.
pub fn doubly_forwarded<'a>(ports: &'a [(&'a str, Bridging)]) -> Vec<&'a str> {
    ports
        .iter()
        .filter(|(_, b)| {
            b.bridge()
                .is_some_and(|br| ports.iter().filter(|(_, o)| o.bridge() == Some(br)).count() >= 2)
        })
        .map(|(n, _)| *n)
        .collect()
}

/// Check the ports (upstream first) for combinations that cannot work. `filter`: whether
/// `"bridge_ports"` is `"filter"`; `nftables`: whether `"bridge_filter"` forces nftables (then
/// switchdev members are named: nftables cannot stop their hardware forwarding).
pub fn check(ports: &[(&str, Bridging)], filter: bool, nftables: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let role = |i: usize| if i == 0 { "upstream" } else { "downstream" };
    for (i, (dev, b)) in ports.iter().enumerate() {
        let Bridging::Device { snooping } = b else {
            continue;
        };
        for (j, (member, m)) in ports.iter().enumerate() {
            if m.bridge() != Some(*dev) {
                continue;
            }
            let fix = if i == 0 || j == 0 {
                "list the bridge's member ports (switch shape), or make the upstream a port \
                 outside the bridge (router shape)"
            } else {
                "list either the bridge or its member ports, not both"
            };
            out.push(error(format!(
                "{} {member} is a member of {} bridge {dev}: it would be relayed in two roles \
                 (every frame of {member} also arrives on {dev}); {fix}",
                role(j),
                role(i)
            )));
        }
        if *snooping {
            out.push(warning(format!(
                "port {dev} is a bridge with multicast snooping on: once an IGMP/MLD querier \
                 runs, UDP PTP (224.0.1.129, ff0e::181) may be withheld from {dev}; fix: echo 0 > \
                 {SYSFS_NET}/{dev}/bridge/multicast_snooping"
            )));
        }
    }
    let doubled = doubly_forwarded(ports);
    if !filter && !doubled.is_empty() {
        out.push(warning(format!(
            "ports {} are members of one bridge and \"bridge_ports\" is \"leave\": the bridge \
             forwards PTP between them too, so clients may get each frame twice",
            doubled.join(", ")
        )));
    }
    let offloaded: Vec<&str> = ports
        .iter()
        .filter(|(n, b)| {
            matches!(
                b,
                Bridging::Member {
                    offloaded: true,
                    ..
                }
            ) && doubled.contains(n)
        })
        .map(|(n, _)| *n)
        .collect();
    if filter && nftables && !offloaded.is_empty() {
        out.push(warning(format!(
            "switchdev ports {}: the nftables filter stops only the software bridge, not a \
             switch that forwards PTP in hardware; fix: \"bridge_filter\": \"auto\" (tc trap \
             filters)",
            offloaded.join(", ")
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(bridge: &str) -> Bridging {
        Bridging::Member {
            bridge: bridge.into(),
            offloaded: false,
        }
    }

    #[test]
    fn sysfs_is_read_as_the_kernel_lays_it_out() {
        let root = std::env::temp_dir().join(format!("ptpproxy-bridge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("br0/bridge")).unwrap();
        std::fs::write(root.join("br0/bridge/multicast_snooping"), "1\n").unwrap();
        std::fs::create_dir_all(root.join("lan1/brport")).unwrap();
        std::os::unix::fs::symlink("../br0", root.join("lan1/master")).unwrap();
        std::fs::create_dir_all(root.join("wan")).unwrap();
        assert_eq!(detect(&root, "br0"), Bridging::Device { snooping: true });
        assert_eq!(detect(&root, "lan1"), member("br0"));
        assert_eq!(detect(&root, "wan"), Bridging::Standalone);
        assert_eq!(detect(&root, "lan9"), Bridging::Absent);
        std::fs::write(root.join("lan1/phys_switch_id"), "00112233\n").unwrap();
        assert_eq!(
            detect(&root, "lan1").to_string(),
            "member of br0 (switchdev)"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn switch_shape_is_fine_and_filtered() {
        let ports = [
            ("wan", member("br0")),
            ("lan1", member("br0")),
            ("lan2", member("br0")),
            ("lan3", member("br1")),
        ];
        assert!(check(&ports, true, true).is_empty());
        assert_eq!(doubly_forwarded(&ports), ["wan", "lan1", "lan2"]);
        let leave = check(&ports, false, true);
        assert_eq!(leave.len(), 1);
        assert!(!leave[0].error);
        assert!(
            leave[0]
                .text
                .starts_with("ports wan, lan1, lan2 are members of one bridge"),
            "{}",
            leave[0].text
        );
    }

    #[test]
    fn router_shape_warns_only_about_snooping() {
        let quiet = [
            ("wan", Bridging::Standalone),
            ("br-lan", Bridging::Device { snooping: false }),
        ];
        assert!(check(&quiet, true, true).is_empty());
        assert!(doubly_forwarded(&quiet).is_empty());
        let snooping = [
            ("wan", Bridging::Standalone),
            ("br-lan", Bridging::Device { snooping: true }),
        ];
        let found = check(&snooping, true, true);
        assert_eq!(found.len(), 1);
        assert!(!found[0].error && found[0].text.contains("br-lan"));
        assert!(found[0]
            .text
            .contains("/sys/class/net/br-lan/bridge/multicast_snooping"));
    }

    #[test]
    fn a_bridge_and_its_member_together_are_refused() {
        let upstream_bridge = [
            ("br0", Bridging::Device { snooping: false }),
            ("lan1", member("br0")),
        ];
        let found = check(&upstream_bridge, true, true);
        assert_eq!(found.len(), 1);
        assert!(found[0].error);
        assert!(
            found[0]
                .text
                .starts_with("downstream lan1 is a member of upstream bridge br0"),
            "{}",
            found[0].text
        );
        let reverse = [
            ("wan", member("br-lan")),
            ("br-lan", Bridging::Device { snooping: false }),
        ];
        let found = check(&reverse, true, true);
        assert!(found[0].error);
        assert!(found[0]
            .text
            .starts_with("upstream wan is a member of downstream bridge br-lan"));
        let both_down = [
            ("wan", Bridging::Standalone),
            ("br-lan", Bridging::Device { snooping: false }),
            ("lan2", member("br-lan")),
        ];
        let found = check(&both_down, true, true);
        assert!(found[0].error);
        assert!(found[0]
            .text
            .contains("list either the bridge or its member ports"));
        // A member of another bridge is no conflict.
        let other = [
            ("wan", Bridging::Standalone),
            ("br-lan", Bridging::Device { snooping: false }),
            ("lan2", member("br-guest")),
        ];
        assert!(check(&other, true, true).is_empty());
    }

    #[test]
    fn switchdev_members_are_named() {
        let ports = [
            (
                "wan",
                Bridging::Member {
                    bridge: "br0".into(),
                    offloaded: true,
                },
            ),
            ("lan1", member("br0")),
        ];
        let found = check(&ports, true, true);
        assert_eq!(found.len(), 1);
        assert!(found[0].text.starts_with("switchdev ports wan: "));
        // With tc trap filters (auto, tc) the hardware is covered: nothing to say.
        assert!(check(&ports, true, false).is_empty());
    }
}
