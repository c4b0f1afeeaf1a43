//! The software-bridge filter as an nftables ruleset: the text (pure, tested) and the one way it
//! reaches the kernel, `nft -f -` with the whole script on stdin, so that each change is one
//! nftables transaction (all of it applies, or none).
//!
//! Why the `nft` program and not netlink from this binary: nf_tables' netlink protocol has no
//! library in this project's dependencies except through the C libnftnl, and a hand-built
//! encoder of rules, sets and expressions is more code to get wrong than the ruleset below,
//! which an operator can read (`nft list table bridge ptpproxy`) and the kernel validates as a
//! whole. Robustness: the table is ptpproxy's own (`bridge ptpproxy`), never anything else; a
//! script always declares the table, deletes it and declares it again, so one transaction
//! replaces whatever a crashed run left; nft runs with an empty environment, its exit status and
//! stderr become the error, and a missing `nft` is one line saying what to install.
//!
//! What the rules match (verified on a software bridge with frames sent through it): ethertype
//! 0x88F7 untagged and under one 802.1Q tag, and UDP to ports 319/320 of the PTP IPv4 and IPv6
//! groups; the bridge holds a tag as metadata by its forward hook, so `ip daddr`/`ip6 daddr`
//! match tagged frames as well, while ethertype 0x88F7 under a tag needs its own rule. Only
//! frames between two relayed ports are dropped, in the forward hook: a member port's AF_PACKET
//! capture has seen each frame before the bridge does, and frames to or from other bridge ports
//! (and the bridge's local delivery) are left alone.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The table: ptpproxy's own, in the bridge family.
pub const TABLE: &str = "ptpproxy";

/// Where `nft` is looked for (a daemon's PATH may lack the sbin directories).
const NFT_PATHS: [&str; 4] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"];

/// Longest an `nft` run may take before it is killed.
const NFT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most of nft's stderr quoted in an error.
const STDERR_MAX: usize = 400;

/// UDPv4 and UDPv6 PTP multicast groups (IEEE 1588-2019 Annex C, D: primary and peer delay).
const GROUPS_V4: &str = "224.0.1.129, 224.0.0.107";
const GROUPS_V6: &str = "ff02::181, ff04::181, ff05::181, ff08::181, ff0e::181, ff02::6b";

/// A script replacing the table with one that drops PTP forwarded between `ports`. The names
/// were validated by the configuration (no quote, backslash, space or control character).
pub fn install_script(ports: &[&str]) -> String {
    let names: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "table bridge {TABLE} {{\n}}\n\
         delete table bridge {TABLE}\n\
         table bridge {TABLE} {{\n\
         \tset relayed {{\n\
         \t\ttype ifname\n\
         \t\telements = {{ {} }}\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority -200; policy accept;\n\
         \t\tiifname @relayed oifname @relayed jump ptp\n\
         \t}}\n\
         \tchain ptp {{\n\
         \t\tether type 0x88f7 counter drop\n\
         \t\tvlan type 0x88f7 counter drop\n\
         \t\tip daddr {{ {GROUPS_V4} }} udp dport {{ 319, 320 }} counter drop\n\
         \t\tip6 daddr {{ {GROUPS_V6} }} udp dport {{ 319, 320 }} counter drop\n\
         \t}}\n\
         }}\n",
        names.join(", ")
    )
}

/// A script removing the table whether or not it exists (declaring it first makes the delete
/// valid in either case).
pub fn remove_script() -> String {
    format!("table bridge {TABLE} {{\n}}\ndelete table bridge {TABLE}\n")
}

/// Why a script did not apply.
#[derive(Debug)]
pub enum NftError {
    /// No `nft` in the usual places.
    Missing,
    /// It could not be started or fed.
    Spawn(std::io::Error),
    /// It ran longer than [`NFT_TIMEOUT`] and was killed.
    Timeout,
    /// It failed: its exit status and what it said.
    Failed { status: String, stderr: String },
}

impl std::fmt::Display for NftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NftError::Missing => write!(
                f,
                "nft not found in {}: install nftables, or set \"bridge_ports\": \"leave\"",
                NFT_PATHS.join(", ")
            ),
            NftError::Spawn(e) => write!(f, "nft could not be run: {e}"),
            NftError::Timeout => {
                write!(f, "nft ran over {} s and was killed", NFT_TIMEOUT.as_secs())
            }
            NftError::Failed { status, stderr } => write!(f, "nft failed ({status}): {stderr}"),
        }
    }
}

/// The first `nft` found.
pub fn nft_path() -> Option<&'static str> {
    NFT_PATHS
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
}

/// Run `script` as one nftables transaction. `spawn` starts the prepared command (the caller
/// lends it the capability it needs).
pub fn apply(
    script: &str,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<std::process::Child>,
) -> Result<(), NftError> {
    let path = nft_path().ok_or(NftError::Missing)?;
    let mut cmd = Command::new(path);
    cmd.args(["-f", "-"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd).map_err(NftError::Spawn)?;
    // The script is a few hundred bytes: it fits the pipe, so writing cannot block on nft.
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    let deadline = Instant::now() + NFT_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(NftError::Spawn)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NftError::Timeout);
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut stderr);
    }
    if status.success() {
        return match fed {
            Some(Err(e)) => Err(NftError::Spawn(e)),
            _ => Ok(()),
        };
    }
    let mut stderr = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    if stderr.len() > STDERR_MAX {
        let mut cut = STDERR_MAX;
        while !stderr.is_char_boundary(cut) {
            cut -= 1;
        }
        stderr.truncate(cut);
        stderr.push_str("...");
    }
    Err(NftError::Failed {
        status: status.to_string(),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_replaces_only_its_own_table() {
        let s = install_script(&["wan", "lan1", "lan2"]);
        assert!(s.starts_with("table bridge ptpproxy {\n}\ndelete table bridge ptpproxy\n"));
        assert!(s.contains("elements = { \"wan\", \"lan1\", \"lan2\" }"));
        assert!(s.contains("iifname @relayed oifname @relayed jump ptp"));
        assert!(s.contains("hook forward"));
        assert!(s.contains("ether type 0x88f7 counter drop"));
        assert!(s.contains("vlan type 0x88f7 counter drop"));
        assert!(s.contains("ip daddr { 224.0.1.129, 224.0.0.107 } udp dport { 319, 320 }"));
        assert!(s.contains("ff0e::181"));
        // Every table statement names ptpproxy's table, none another one.
        for line in s.lines().filter(|l| l.contains("table")) {
            assert!(line.contains("table bridge ptpproxy"), "{line}");
        }
        assert_eq!(
            remove_script(),
            "table bridge ptpproxy {\n}\ndelete table bridge ptpproxy\n"
        );
    }
}
