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
//!   On switchdev members (the switch ASIC forwards between them without the software bridge
//!   seeing the frames) `"bridge_filter": "auto"` (the default) installs tc flower filters with
//!   action trap on each relayed member's ingress instead ([`tc`]): offloaded, they make the
//!   ASIC hand PTP to the CPU and forward it nowhere; in software they steal it from the bridge
//!   after the capture saw it. If the kernel lacks tc's modules, nftables is used and a warning
//!   says the hardware still forwards. `"tc"` and `"nftables"` force one mechanism.
//! - **router shape**: a downstream port is the bridge device itself (e.g. `br-lan`), the
//!   upstream a routed port. Nothing is installed: the bridge delivers to its device what
//!   ptpproxy relays, and ptpproxy's frames sent on the device reach every member.
//!
//! Privileges: nftables and tc changes need CAP_NET_ADMIN. Only when a filter is needed at start
//! does the daemon keep it, in its permitted set only: each `nft` run gets it as an ambient
//! capability for the length of that child process, and each tc change raises it to effective
//! for the netlink requests of that change only (the kernel checks it when the socket is opened
//! and on each request) and lowers it again. Without a filter at start it is
//! dropped with everything else, and a filter a reload or a new bridge membership would need
//! later is then reported as needing a restart.
//!
//! This module never decides about frames and never touches a table other than its own.

pub mod detect;
pub mod nft;
pub mod tc;

use super::privileges;
use detect::{Bridging, Finding};
use ptpproxy::config::{BridgeFilter, BridgePorts, Config};
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
    detect::check(
        &as_refs(&ports),
        config.bridge_ports == BridgePorts::Filter,
        config.bridge_filter == BridgeFilter::Nftables,
    )
}

fn as_refs(ports: &[(String, Bridging)]) -> Vec<(&str, Bridging)> {
    ports.iter().map(|(n, b)| (n.as_str(), b.clone())).collect()
}

/// The mechanism of an installed filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ptpproxy's nftables table, in the bridge's forward hook.
    Nftables,
    /// tc flower trap filters on each port's ingress.
    Tc,
}

impl Kind {
    /// As the status file and the log name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nftables => "nftables",
            Kind::Tc => "tc",
        }
    }
}

/// Which mechanism `mode` asks for on `ports`: tc if forced, or in `auto` when one of them is a
/// switchdev member (whose hardware forwarding nftables cannot stop).
pub fn choose(mode: BridgeFilter, ports: &[(String, Bridging)], wanted: &[String]) -> Kind {
    let offloaded = |name: &String| {
        ports.iter().any(|(n, b)| {
            n == name
                && matches!(
                    b,
                    Bridging::Member {
                        offloaded: true,
                        ..
                    }
                )
        })
    };
    match mode {
        BridgeFilter::Tc => Kind::Tc,
        BridgeFilter::Nftables => Kind::Nftables,
        BridgeFilter::Auto if wanted.iter().any(offloaded) => Kind::Tc,
        BridgeFilter::Auto => Kind::Nftables,
    }
}

/// What [`Bridges::sync`] did, for the log.
pub enum Change {
    Installed(Kind, Vec<String>),
    /// tc was refused (`why`), nftables installed instead.
    FellBack(String, Vec<String>),
    Removed(Kind),
    Failed(String),
}

/// Why a filter was not changed.
#[derive(Debug)]
pub enum FilterError {
    Nft(nft::NftError),
    /// tc on the named port.
    Tc(String, tc::TcError),
    /// CAP_NET_ADMIN could not be raised for tc.
    Raise(std::io::Error),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Nft(e) => e.fmt(f),
            FilterError::Tc(port, e) => write!(f, "{port}: {e}"),
            FilterError::Raise(e) => write!(f, "CAP_NET_ADMIN not raised for tc: {e}"),
        }
    }
}

/// The bridging of the configured ports and the filter installed for them.
/// The calls that change the system, replaceable in tests.
#[derive(Clone, Copy)]
pub struct Ops {
    pub tc_install: fn(&str) -> Result<(), tc::TcError>,
    pub tc_remove: fn(&str) -> Result<(), tc::TcError>,
    /// Apply an nftables script; `dropped`: privileges were dropped (lend CAP_NET_ADMIN).
    pub nft: fn(&str, bool) -> Result<(), nft::NftError>,
    /// Whether `nft` is there to ask.
    pub nft_present: fn() -> bool,
}

/// The real system.
pub const SYSTEM: Ops = Ops {
    tc_install: tc::install,
    tc_remove: tc::remove,
    nft: |script, dropped| {
        if dropped {
            nft::apply(script, privileges::spawn_with_net_admin)
        } else {
            nft::apply(script, |c| c.spawn())
        }
    },
    nft_present: || nft::nft_path().is_some(),
};

pub struct Bridges {
    ops: Ops,
    /// Per configured port, as last detected.
    pub ports: Vec<(String, Bridging)>,
    /// The ports the installed filter covers; empty: none.
    installed: Vec<String>,
    /// The mechanism of the installed filter.
    kind: Kind,
    /// tc was refused as unsupported: `auto` uses nftables from then on, `tc` is not tried
    /// again before a reload or a re-created port.
    tc_unsupported: bool,
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
            kind: Kind::Nftables,
            tc_unsupported: false,
            ops: SYSTEM,
            dropped: false,
            net_admin: true,
            retry_at: None,
        }
    }

    /// With `ops` instead of the real system (tests of the selection).
    #[cfg(test)]
    pub fn with_ops(ops: Ops) -> Bridges {
        let mut b = Bridges::new();
        b.ops = ops;
        b
    }

    /// As if `installed` had been installed for `ports` (tests of what is reported).
    #[cfg(test)]
    pub fn reported(ports: Vec<(String, Bridging)>, installed: &[&str], kind: Kind) -> Bridges {
        let mut b = Bridges::new();
        b.ports = ports;
        b.kind = kind;
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

    /// The mechanism filtering `name`'s PTP: "tc", "nftables", or "" if none.
    pub fn filter_kind(&self, name: &str) -> &'static str {
        if self.filtered(name) {
            self.kind.name()
        } else {
            ""
        }
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

    /// Re-detect the ports; install, replace or remove the filter if what it should cover or
    /// how changed (or `force`: a port was re-created, the filter may be gone). `None`: nothing
    /// to do.
    pub fn sync(&mut self, config: &Config, force: bool) -> Option<Change> {
        self.ports = detect_ports(config);
        let wanted: Vec<String> = match config.bridge_ports {
            BridgePorts::Filter => detect::doubly_forwarded(&as_refs(&self.ports))
                .into_iter()
                .map(str::to_owned)
                .collect(),
            BridgePorts::Leave => Vec::new(),
        };
        let mut kind = choose(config.bridge_filter, &self.ports, &wanted);
        if kind == Kind::Tc && self.tc_unsupported {
            match config.bridge_filter {
                BridgeFilter::Auto => kind = Kind::Nftables,
                // Forced and refused (logged): the kernel will not grow the modules by itself;
                // tried again after a reload or a re-created port only.
                _ if !force => return None,
                _ => {}
            }
        }
        let changed =
            wanted != self.installed || (!wanted.is_empty() && (force || kind != self.kind));
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
        let change = self.apply(&wanted, kind, config.bridge_filter == BridgeFilter::Auto);
        self.retry_at = match change {
            Change::Failed(_) => Some(Instant::now() + RETRY),
            _ => None,
        };
        Some(change)
    }

    /// Replace the installed filter by one of `kind` covering `wanted` (none if empty); a tc
    /// refusal falls back to nftables if `fallback`.
    fn apply(&mut self, wanted: &[String], kind: Kind, fallback: bool) -> Change {
        // What the other mechanism (or, for tc, ports no longer wanted) had goes first. The
        // nftables table is replaced whole by one transaction: removing it first would leave the
        // bridge forwarding PTP between the two `nft` runs.
        let stale: Vec<String> = if kind == self.kind && !wanted.is_empty() {
            match kind {
                Kind::Nftables => Vec::new(),
                Kind::Tc => self
                    .installed
                    .iter()
                    .filter(|p| !wanted.contains(p))
                    .cloned()
                    .collect(),
            }
        } else {
            self.installed.clone()
        };
        if let Err(e) = self.uninstall(self.kind, &stale) {
            return Change::Failed(e.to_string());
        }
        self.installed.retain(|p| !stale.contains(p));
        if wanted.is_empty() {
            let was = self.kind;
            self.installed.clear();
            return Change::Removed(was);
        }
        match self.install(kind, wanted) {
            Ok(()) => {}
            Err(FilterError::Tc(port, e @ tc::TcError::Unsupported(..))) if fallback => {
                self.tc_unsupported = true;
                let why = format!("{port}: {e}");
                return match self.install(Kind::Nftables, wanted) {
                    Ok(()) => self.installed_as(Kind::Nftables, wanted, Some(why)),
                    Err(e) => Change::Failed(format!("{why}; then {e}")),
                };
            }
            Err(e) => {
                if let FilterError::Tc(_, tc::TcError::Unsupported(..)) = e {
                    self.tc_unsupported = true;
                }
                if kind == Kind::Tc {
                    // This call's filters were rolled back; ports that had filters before may
                    // still hold some: removed too, so that the list stays true (none).
                    let before = self.installed.clone();
                    let _ = self.uninstall(Kind::Tc, &before);
                    self.installed.clear();
                }
                return Change::Failed(e.to_string());
            }
        }
        self.installed_as(kind, wanted, None)
    }

    fn installed_as(&mut self, kind: Kind, ports: &[String], fell_back: Option<String>) -> Change {
        if kind == Kind::Tc {
            // tc works now (a reload's retry): membership changes are followed again.
            self.tc_unsupported = false;
        }
        self.kind = kind;
        self.installed = ports.to_vec();
        match fell_back {
            Some(why) => Change::FellBack(why, self.installed.clone()),
            None => Change::Installed(kind, self.installed.clone()),
        }
    }

    /// Install a filter of `kind` on `ports`. tc: each port in turn; a failure removes what this
    /// call added on the ports before it.
    fn install(&self, kind: Kind, ports: &[String]) -> Result<(), FilterError> {
        let names: Vec<&str> = ports.iter().map(String::as_str).collect();
        match kind {
            Kind::Nftables => self
                .run(&nft::install_script(&names))
                .map_err(FilterError::Nft),
            Kind::Tc => self.with_net_admin(|| {
                for (i, port) in names.iter().enumerate() {
                    if let Err(e) = (self.ops.tc_install)(port) {
                        for done in &names[..i] {
                            let _ = (self.ops.tc_remove)(done);
                        }
                        return Err(FilterError::Tc((*port).to_owned(), e));
                    }
                }
                Ok(())
            }),
        }
    }

    /// Remove a filter of `kind` from `ports` (nftables: the whole table).
    fn uninstall(&self, kind: Kind, ports: &[String]) -> Result<(), FilterError> {
        if ports.is_empty() {
            return Ok(());
        }
        match kind {
            Kind::Nftables => self.run(&nft::remove_script()).map_err(FilterError::Nft),
            Kind::Tc => self.with_net_admin(|| {
                let mut result = Ok(());
                for port in ports {
                    if let Err(e) = (self.ops.tc_remove)(port) {
                        result = Err(FilterError::Tc(port.clone(), e));
                    }
                }
                result
            }),
        }
    }

    /// Remove what a crashed run may have left: the nftables table (if `nft` is there to ask)
    /// and ptpproxy's tc priorities on the configured ports.
    pub fn remove_stale(&mut self, config: &Config) -> Result<(), FilterError> {
        let ports: Vec<String> = config.port_names().map(str::to_owned).collect();
        let tc = self.uninstall(Kind::Tc, &ports);
        if (self.ops.nft_present)() {
            self.run(&nft::remove_script()).map_err(FilterError::Nft)?;
        }
        tc
    }

    /// Remove the installed filter (at exit).
    pub fn remove(&mut self) -> Option<Result<(), FilterError>> {
        if self.installed.is_empty() {
            return None;
        }
        let result = self.uninstall(self.kind, &self.installed);
        if result.is_ok() {
            self.installed.clear();
        }
        Some(result)
    }

    fn run(&self, script: &str) -> Result<(), nft::NftError> {
        (self.ops.nft)(script, self.dropped)
    }

    /// Run the tc requests of `f` with CAP_NET_ADMIN effective (raised from the permitted set
    /// after privileges were dropped, lowered again right after).
    fn with_net_admin(
        &self,
        f: impl FnOnce() -> Result<(), FilterError>,
    ) -> Result<(), FilterError> {
        if self.dropped {
            privileges::with_net_admin(f).map_err(FilterError::Raise)?
        } else {
            f()
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
        Change::Installed(kind, ports) => log.notice(&format!(
            "bridge filter: PTP no longer forwarded by the bridge between {} ({})",
            ports.join(", "),
            what(*kind)
        )),
        Change::FellBack(why, ports) => {
            log.warn(&format!(
                "bridge filter: tc trap refused ({why}): nftables instead, which stops only the \
                 software bridge; a switch forwarding in hardware still forwards PTP"
            ));
            log.notice(&format!(
                "bridge filter: PTP no longer forwarded by the bridge between {} ({})",
                ports.join(", "),
                what(Kind::Nftables)
            ))
        }
        Change::Removed(kind) => log.notice(&format!("bridge filter: removed ({})", what(*kind))),
        Change::Failed(e) => log.err(&format!("bridge filter not changed: {e}")),
    }
}

/// The installed filter as the log names it.
fn what(kind: Kind) -> String {
    match kind {
        Kind::Nftables => format!("nftables table bridge {}", nft::TABLE),
        Kind::Tc => format!(
            "tc flower trap filters, ingress chain 0 prio {:#x}..{:#x}",
            tc::PRIO_BASE,
            tc::PRIO_LAST
        ),
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
        if let Err(e) = self.bridges.remove_stale(&self.config) {
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
        let kind = self.bridges.kind;
        match self.bridges.remove() {
            Some(Ok(())) => log_change(&mut self.log, &Change::Removed(kind)),
            Some(Err(e)) => self.log.err(&format!(
                "bridge filter not removed: {e}; remove it with: {}",
                match kind {
                    Kind::Nftables => format!("nft delete table bridge {}", nft::TABLE),
                    Kind::Tc => format!(
                        "tc filter del dev PORT ingress prio N, N = {} to {}",
                        tc::PRIO_BASE,
                        tc::PRIO_LAST
                    ),
                }
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
