//! The grandmaster side as the relay hears it, per served domain: who the grandmaster is (from
//! the last Announce on the upstream port: its identity, clock quality, priorities, steps
//! removed, and the master port that sent it), and when the last Sync, Follow_Up and Announce
//! arrived, so that an operator sees what is being relayed and whether it is fresh.
//!
//! One entry per domain of the configuration, in a fixed-capacity list
//! ([`MAX_DOMAINS`](crate::config::MAX_DOMAINS)): noting a message is a short linear search and
//! a few stores, never an allocation. The table only records; it never decides about a frame,
//! and it reads no clock (`now` is passed in).

use crate::config::{Config, MAX_DOMAINS};
use crate::time::Instant;
use crate::wire::ptp::{AnnounceBody, Header};
use crate::wire::{MessageType, PortIdentity};

/// The grandmaster an Announce names (IEEE 1588-2019 §13.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grandmaster {
    pub identity: [u8; 8],
    pub clock_class: u8,
    pub clock_accuracy: u8,
    pub offset_scaled_log_variance: u16,
    pub priority1: u8,
    pub priority2: u8,
    pub steps_removed: u16,
    pub time_source: u8,
}

impl From<&AnnounceBody> for Grandmaster {
    fn from(a: &AnnounceBody) -> Grandmaster {
        let q = &a.grandmaster_clock_quality;
        Grandmaster {
            identity: a.grandmaster_identity,
            clock_class: q.clock_class,
            clock_accuracy: q.clock_accuracy,
            offset_scaled_log_variance: q.offset_scaled_log_variance,
            priority1: a.grandmaster_priority1,
            priority2: a.grandmaster_priority2,
            steps_removed: a.steps_removed,
            time_source: a.time_source,
        }
    }
}

/// What the upstream port carried in one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub domain: u8,
    /// From the last Announce; `None` until one arrived.
    pub grandmaster: Option<Grandmaster>,
    /// The sourcePortIdentity of the last Announce: the master port the relay listens to.
    pub master: Option<PortIdentity>,
    pub last_sync: Option<Instant>,
    pub last_follow_up: Option<Instant>,
    pub last_announce: Option<Instant>,
    /// Announces naming another grandmaster than the one before (the first is not a change).
    pub grandmaster_changes: u64,
}

impl Upstream {
    fn new(domain: u8) -> Upstream {
        Upstream {
            domain,
            grandmaster: None,
            master: None,
            last_sync: None,
            last_follow_up: None,
            last_announce: None,
            grandmaster_changes: 0,
        }
    }
}

/// A new grandmaster in a domain: the one before, the new one and the port announcing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrandmasterChange {
    pub domain: u8,
    pub from: [u8; 8],
    pub to: Grandmaster,
    pub master: PortIdentity,
}

/// The upstream side of every served domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTable {
    domains: heapless::Vec<Upstream, MAX_DOMAINS>,
}

impl UpstreamTable {
    pub fn new(config: &Config) -> UpstreamTable {
        let mut t = UpstreamTable {
            domains: heapless::Vec::new(),
        };
        t.reconfigure(config);
        t
    }

    /// Serve the domains of `config`: those still served keep what was heard in them.
    pub fn reconfigure(&mut self, config: &Config) {
        let old = core::mem::take(&mut self.domains);
        for &d in &config.domains {
            let kept = old.iter().find(|u| u.domain == d).copied();
            // Both lists hold at most MAX_DOMAINS: the push cannot fail.
            let _ = self.domains.push(kept.unwrap_or(Upstream::new(d)));
        }
    }

    /// Note a Sync, Follow_Up or Announce of `domain` received on the upstream port at `now`
    /// (`message`: its PTP message). A change of grandmaster is returned.
    pub fn note(
        &mut self,
        now: Instant,
        domain: u8,
        message: &Header<&[u8]>,
    ) -> Option<GrandmasterChange> {
        let u = self.domains.iter_mut().find(|u| u.domain == domain)?;
        match message.message_type() {
            MessageType::Sync => u.last_sync = Some(now),
            MessageType::FollowUp => u.last_follow_up = Some(now),
            MessageType::Announce => {
                let body = message.announce()?;
                let gm = Grandmaster::from(&body);
                let master = message.source_port_identity();
                u.last_announce = Some(now);
                u.master = Some(master);
                let before = u.grandmaster.replace(gm)?;
                if before.identity != gm.identity {
                    u.grandmaster_changes += 1;
                    return Some(GrandmasterChange {
                        domain,
                        from: before.identity,
                        to: gm,
                        master,
                    });
                }
            }
            _ => {}
        }
        None
    }

    /// The served domains, in the order of the configuration.
    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.domains.iter()
    }

    pub fn get(&self, domain: u8) -> Option<&Upstream> {
        self.domains.iter().find(|u| u.domain == domain)
    }
}

/// A clockIdentity written the way linuxptp writes it: `aabbcc.fffe.ddeeff`.
pub struct ClockId(pub [u8; 8]);

impl core::fmt::Display for ClockId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use crate::wire::ptp::{self, AnnounceBody};
    use crate::wire::MessageRepr;

    const GM_A: [u8; 8] = [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0x01];
    const GM_B: [u8; 8] = [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0x02];

    fn port(gm: [u8; 8]) -> PortIdentity {
        PortIdentity {
            clock_identity: gm,
            port_number: 1,
        }
    }

    fn message(repr: MessageRepr<'_>) -> Vec<u8> {
        let mut m = vec![0u8; repr.buffer_len()];
        repr.emit(&mut m);
        m
    }

    fn announce(gm: [u8; 8], class: u8, domain: u8) -> Vec<u8> {
        let mut body = AnnounceBody::new(gm);
        body.grandmaster_clock_quality.clock_class = class;
        body.steps_removed = 1;
        message(MessageRepr::announce(port(gm), 7, body).with_domain(domain))
    }

    fn note(t: &mut UpstreamTable, now: Instant, m: &[u8]) -> Option<GrandmasterChange> {
        let h = ptp::Header::new_unchecked(m);
        t.note(now, h.domain_number(), &h)
    }

    fn config(domains: &[u8]) -> Config {
        let mut c = Config::parse(br#"{"upstream":"eth0","downstream":["lan1"]}"#).unwrap();
        c.domains = heapless::Vec::from_slice(domains).unwrap();
        c
    }

    #[test]
    fn sync_follow_up_and_announce_are_noted_per_domain() {
        let mut t = UpstreamTable::new(&config(&[0, 24]));
        let t0 = Instant::from_secs(10);
        let sync = message(MessageRepr::sync(port(GM_A), 1, ptp::Timestamp::default()));
        let fup = message(MessageRepr::follow_up(
            port(GM_A),
            1,
            ptp::Timestamp::default(),
        ));
        assert_eq!(note(&mut t, t0, &sync), None);
        assert_eq!(note(&mut t, t0 + Duration::from_millis(1), &fup), None);
        assert_eq!(note(&mut t, t0, &announce(GM_A, 6, 24)), None);
        let d0 = t.get(0).unwrap();
        assert_eq!(d0.last_sync, Some(t0));
        assert_eq!(d0.last_follow_up, Some(t0 + Duration::from_millis(1)));
        assert_eq!((d0.last_announce, d0.grandmaster), (None, None));
        let d24 = t.get(24).unwrap();
        let gm = d24.grandmaster.unwrap();
        assert_eq!(
            (gm.identity, gm.clock_class, gm.steps_removed),
            (GM_A, 6, 1)
        );
        assert_eq!((gm.priority1, gm.clock_accuracy), (128, 0xFE));
        assert_eq!(d24.master, Some(port(GM_A)));
        assert_eq!(d24.last_sync, None);
        // A domain not served is not noted (the relay drops its frames before).
        assert_eq!(note(&mut t, t0, &announce(GM_A, 6, 5)), None);
        assert_eq!(t.iter().map(|u| u.domain).collect::<Vec<_>>(), [0, 24]);
    }

    #[test]
    fn a_new_grandmaster_is_a_change_the_first_is_not() {
        let mut t = UpstreamTable::new(&config(&[0]));
        let t0 = Instant::from_secs(1);
        assert_eq!(note(&mut t, t0, &announce(GM_A, 248, 0)), None);
        assert_eq!(note(&mut t, t0, &announce(GM_A, 6, 0)), None);
        let change = note(&mut t, t0, &announce(GM_B, 7, 0)).unwrap();
        assert_eq!((change.domain, change.from), (0, GM_A));
        assert_eq!((change.to.identity, change.to.clock_class), (GM_B, 7));
        assert_eq!(change.master, port(GM_B));
        assert_eq!(t.get(0).unwrap().grandmaster_changes, 1);
    }

    #[test]
    fn a_reload_keeps_the_domains_that_stay() {
        let mut t = UpstreamTable::new(&config(&[0, 1]));
        note(&mut t, Instant(5), &announce(GM_A, 6, 1));
        t.reconfigure(&config(&[1, 2]));
        assert_eq!(t.iter().map(|u| u.domain).collect::<Vec<_>>(), [1, 2]);
        assert!(t.get(1).unwrap().grandmaster.is_some());
        assert_eq!(t.get(2).unwrap().grandmaster, None);
        assert!(t.get(0).is_none());
    }

    #[test]
    fn a_short_announce_names_no_grandmaster() {
        let mut t = UpstreamTable::new(&config(&[0]));
        let full = announce(GM_A, 6, 0);
        assert_eq!(note(&mut t, Instant(1), &full[..50]), None);
        assert_eq!(t.get(0).unwrap().grandmaster, None);
    }

    #[test]
    fn clock_identities_print_like_linuxptp() {
        assert_eq!(ClockId(GM_A).to_string(), "aabbcc.fffe.ddee01");
    }
}
