//! Ports in a Linux bridge: what each configured port is (a bridge member, a bridge device, or
//! neither), the checks that refuse or warn about combinations that cannot work, and the filter
//! that stops a bridge forwarding PTP between the ports ptpproxy relays (the switch shape), so
//! that each client gets each frame once: from ptpproxy.
//!
//! Two deployments (README, *Deploying on a switch*):
//! - **switch shape**: the upstream and downstream ports are members of one bridge. The bridge
//!   would forward every PTP frame between them besides ptpproxy: clients would get each Sync
//!   twice and every other segment's Delay_Resp. With `"bridge_ports": "filter"` (the default)
//!   this module installs an nftables table ([`nft`]) dropping PTP in the bridge's forward hook
//!   between relayed ports; the member ports' captures still see every frame, since a packet
//!   socket receives a frame before the bridge does. It is removed at exit (SIGTERM/SIGINT, and
//!   when the daemon ends on an error), replaced at start (a crashed run's table), re-installed
//!   when a reload changes the ports, when a port is re-created, and whenever which relayed ports
//!   share a bridge changes (checked once a second).
//! - **router shape**: a downstream port is the bridge device itself (e.g. `br-lan`), the
//!   upstream a routed port. Nothing is installed: the bridge delivers to its device what
//!   ptpproxy relays, and ptpproxy's frames sent on the device reach every member.
//!
//! Privileges: nftables changes need CAP_NET_ADMIN. Only when a filter is needed at start does
//! the daemon keep it, in its permitted set only (never effective): each `nft` run gets it as an
//! ambient capability for the length of that child process. Without a filter at start it is
//! dropped with everything else, and a filter a reload or a new bridge membership would need
//! later is then reported as needing a restart.
//!
//! This module never decides about frames and never touches a table other than its own.

pub mod detect;
pub mod nft;
pub mod tc;

use super::privileges;
use detect::{Bridging, Finding};
use ptpproxy::config::{BridgePorts, Config};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long after a failed `nft` run the next one is tried.
const RETRY: Duration = Duration::from_secs(10);

/// Each port's bridging, as the kernel describes it now (port order: upstream first).
pub fn detect_ports(config: &Config) -> Vec<(String, Bridging)> {
    config
        .port_names()
        .map(|n| {
            (
                n.to_owned(),
                detect::detect(Path::new(detect::SYSFS_NET), n),
            )
        })
        .collect()
}

/// The checks of [`detect::check`] on `config`'s ports as they are now.
pub fn check_config(config: &Config) -> Vec<Finding> {
    let ports = detect_ports(config);
    detect::check(&as_refs(&ports), config.bridge_ports == BridgePorts::Filter)
}

fn as_refs(ports: &[(String, Bridging)]) -> Vec<(&str, Bridging)> {
    ports.iter().map(|(n, b)| (n.as_str(), b.clone())).collect()
}

/// What [`Bridges::sync`] did, for the log.
pub enum Change {
    Installed(Vec<String>),
    Removed,
    Failed(String),
}

/// The bridging of the configured ports and the filter installed for them.
pub struct Bridges {
    /// Per configured port, as last detected.
    pub ports: Vec<(String, Bridging)>,
    /// The ports the installed table names; empty: no table.
    installed: Vec<String>,
    /// Privileges were dropped: `nft` gets CAP_NET_ADMIN as an ambient capability, if it was
    /// kept (`net_admin`).
    dropped: bool,
    net_admin: bool,
    /// After a failure, no new attempt before this.
    retry_at: Option<Instant>,
}

impl Bridges {
    pub fn new() -> Bridges {
        Bridges {
            ports: Vec::new(),
            installed: Vec::new(),
            dropped: false,
            net_admin: true,
            retry_at: None,
        }
    }

    /// As if `installed` had been installed for `ports` (tests of what is reported).
    #[cfg(test)]
    pub fn reported(ports: Vec<(String, Bridging)>, installed: &[&str]) -> Bridges {
        let mut b = Bridges::new();
        b.ports = ports;
        b.installed = installed.iter().map(|n| (*n).to_owned()).collect();
        // Nothing was installed for real: nothing to remove when dropped.
        b.net_admin = false;
        b.dropped = true;
        b
    }

    /// Whether `name` is named by the installed filter.
    pub fn filtered(&self, name: &str) -> bool {
        self.installed.iter().any(|n| n == name)
    }

    /// `name`'s bridging as the status file shows it: empty if it is in no bridge.
    pub fn describe(&self, name: &str) -> String {
        match self.ports.iter().find(|(n, _)| n == name) {
            Some((_, b @ (Bridging::Member { .. } | Bridging::Device { .. }))) => b.to_string(),
            _ => String::new(),
        }
    }

    /// Whether a filter is installed (then CAP_NET_ADMIN must stay to remove it).
    pub fn installed(&self) -> bool {
        !self.installed.is_empty()
    }

    /// Privileges were dropped, CAP_NET_ADMIN kept (permitted only) or not.
    pub fn privileges_dropped(&mut self, net_admin_kept: bool) {
        self.dropped = true;
        self.net_admin = net_admin_kept;
    }

    /// Re-detect the ports; install, replace or remove the filter if what it should name
    /// changed (or `force`: a port was re-created, the table may be gone). `None`: nothing to do.
    pub fn sync(&mut self, config: &Config, force: bool) -> Option<Change> {
        self.ports = detect_ports(config);
        let wanted: Vec<String> = match config.bridge_ports {
            BridgePorts::Filter => detect::doubly_forwarded(&as_refs(&self.ports))
                .into_iter()
                .map(str::to_owned)
                .collect(),
            BridgePorts::Leave => Vec::new(),
        };
        let changed = wanted != self.installed || (force && !wanted.is_empty());
        if !changed || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        if self.dropped && !self.net_admin {
            self.retry_at = Some(Instant::now() + RETRY * 6);
            return Some(Change::Failed(format!(
                "the bridge filter for {} needs CAP_NET_ADMIN, dropped at start because no \
                 filter was needed then: restart ptpproxy",
                if wanted.is_empty() {
                    self.installed.join(", ")
                } else {
                    wanted.join(", ")
                }
            )));
        }
        let result = if wanted.is_empty() {
            self.run(&nft::remove_script())
        } else {
            let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
            self.run(&nft::install_script(&names))
        };
        match result {
            Ok(()) => {
                self.retry_at = None;
                self.installed = wanted;
                Some(if self.installed.is_empty() {
                    Change::Removed
                } else {
                    Change::Installed(self.installed.clone())
                })
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + RETRY);
                Some(Change::Failed(e.to_string()))
            }
        }
    }

    /// Remove a stale table a crashed run may have left, if `nft` is there to ask.
    pub fn remove_stale(&mut self) -> Result<(), nft::NftError> {
        if nft::nft_path().is_none() {
            return Ok(());
        }
        self.run(&nft::remove_script())
    }

    /// Remove the installed filter (at exit).
    pub fn remove(&mut self) -> Option<Result<(), nft::NftError>> {
        if self.installed.is_empty() {
            return None;
        }
        let result = self.run(&nft::remove_script());
        if result.is_ok() {
            self.installed.clear();
        }
        Some(result)
    }

    fn run(&self, script: &str) -> Result<(), nft::NftError> {
        if self.dropped {
            nft::apply(script, privileges::spawn_with_net_admin)
        } else {
            nft::apply(script, |c| c.spawn())
        }
    }
}

impl Drop for Bridges {
    /// The daemon ends without [`Bridges::remove`] (an error of the loop): the bridge must not
    /// keep dropping PTP that no relay forwards.
    fn drop(&mut self) {
        if self.dropped && !self.net_admin {
            return; // nft could not change anything
        }
        let _ = self.remove();
    }
}

/// Log what [`Bridges::sync`] did.
pub fn log_change(log: &mut super::log::Log, change: &Change) {
    match change {
        Change::Installed(ports) => log.notice(&format!(
            "bridge filter: PTP no longer forwarded by the bridge between {} (nftables table \
             bridge {})",
            ports.join(", "),
            nft::TABLE
        )),
        Change::Removed => log.notice(&format!(
            "bridge filter: removed (nftables table bridge {})",
            nft::TABLE
        )),
        Change::Failed(e) => log.err(&format!("bridge filter not changed: {e}")),
    }
}

/// Log the warnings among `findings`; the errors joined in one line, if any.
pub fn log_findings(log: &mut super::log::Log, findings: &[Finding]) -> Option<String> {
    for f in findings.iter().filter(|f| !f.error) {
        log.warn(&f.text);
    }
    let errors: Vec<&str> = findings
        .iter()
        .filter(|f| f.error)
        .map(|f| f.text.as_str())
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

impl super::Daemon {
    /// At start, before privileges are dropped: warnings about the ports, a crashed run's table
    /// removed, the filter installed if the ports need it.
    pub(super) fn start_bridges(&mut self) {
        let findings = check_config(&self.config);
        if let Some(errors) = log_findings(&mut self.log, &findings) {
            // main refuses these before starting; a port that became a member since is named.
            self.log.err(&errors);
        }
        if let Err(e) = self.bridges.remove_stale() {
            self.log
                .warn(&format!("bridge filter: a stale table not removed: {e}"));
        }
        if let Some(change) = self.bridges.sync(&self.config, false) {
            log_change(&mut self.log, &change);
        }
    }

    /// Once a second, after a reload and when a port was re-created (`force`).
    pub(super) fn sync_bridges(&mut self, force: bool) {
        if let Some(change) = self.bridges.sync(&self.config, force) {
            log_change(&mut self.log, &change);
        }
    }

    /// At exit: the bridge forwards PTP again.
    pub(super) fn stop_bridges(&mut self) {
        match self.bridges.remove() {
            Some(Ok(())) => log_change(&mut self.log, &Change::Removed),
            Some(Err(e)) => self.log.err(&format!(
                "bridge filter not removed: {e}; remove it with: nft delete table bridge {}",
                nft::TABLE
            )),
            None => {}
        }
    }
}
