//! The link primitive of the docker backend: `iptables` and `tc` rules inside each
//! node's network namespace (harness.md §5 `partition`, `flaky`, `slow`), kept equal
//! to the nemesis's link-fault state, for whichever container runs the node (its
//! own or an adversary in its place, issue 12).

use super::{be, DockerBackend, State, SLOW_RATE_KBIT};
use crate::backend::{BackendError, LinkCaps, LinkControl, LinkFaults};
use rollcall_docker::{DockerError, SlowLink};
use std::net::Ipv4Addr;

/// One node's share of the link-fault state, in the rules it needs inside its own
/// network namespace: cut links are dropped where they arrive (so a one-way cut
/// stays one-way at the packet level), loss and rate limits where they leave.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct NodeRules {
    /// Peers whose packets to this node are dropped (cut peer → node).
    drop_from: Vec<Ipv4Addr>,
    /// Peers to which this node's packets are lost with a probability.
    loss_to: Vec<(Ipv4Addr, f64)>,
    /// Peers to which this node's traffic is slowed, and the delay and jitter asked for.
    slow_to: Vec<Ipv4Addr>,
    delay_ms: u32,
    jitter_ms: u32,
}

impl DockerBackend {
    /// The rules node `i` needs for the current link-fault state.
    pub(super) fn rules_for(&self, i: usize) -> NodeRules {
        let me = self.nodes[i].name.as_str();
        let ip = |n: &str| self.nodes.iter().find(|d| d.name == n).map(|d| d.ip);
        let mut r = NodeRules {
            drop_from: (self.links.cut.iter())
                .filter(|(_, to)| to == me)
                .filter_map(|(from, _)| ip(from))
                .collect(),
            loss_to: (self.links.lossy.iter())
                .filter(|((from, _), _)| from == me)
                .filter_map(|((_, to), l)| Some((ip(to)?, f64::from(l.loss_pct.min(100)) / 100.0)))
                .collect(),
            ..NodeRules::default()
        };
        for ((from, to), s) in &self.links.slow {
            if let (true, Some(p)) = (from == me, ip(to)) {
                r.slow_to.push(p);
                r.delay_ms = r.delay_ms.max(s.delay_ms.min(u64::from(u32::MAX)) as u32);
                r.jitter_ms = r.jitter_ms.max(s.jitter_ms.min(u64::from(u32::MAX)) as u32);
            }
        }
        r
    }

    /// Makes the rules inside the running nodes among `idx` equal to what the
    /// link-fault state needs: nodes whose rules changed get one flush and every
    /// rule that holds (concurrently). Paused or stopped nodes are done when they
    /// run again.
    pub(super) fn sync_rules(&mut self, idx: &[usize]) -> Result<(), BackendError> {
        let netem = self.netem;
        let mut jobs = Vec::new();
        let mut now_installed = Vec::new();
        for &i in idx {
            if self.nodes[i].state != State::Running {
                continue;
            }
            let want = self.rules_for(i);
            if self.installed.get(&i).unwrap_or(&NodeRules::default()) == &want {
                continue;
            }
            let c = self.container(i)?;
            now_installed.push((i, want.clone()));
            jobs.push(async move {
                c.heal().await?;
                c.unslow().await?;
                if !want.drop_from.is_empty() {
                    c.block_from(&want.drop_from).await?;
                }
                for (peer, p) in &want.loss_to {
                    c.lossy(&[*peer], *p).await?;
                }
                if !want.slow_to.is_empty() {
                    let link = SlowLink {
                        rate_kbit: SLOW_RATE_KBIT,
                        delay_ms: (netem && want.delay_ms > 0).then_some(want.delay_ms),
                        jitter_ms: want.jitter_ms,
                    };
                    c.slow(link, &want.slow_to).await?;
                }
                Ok::<(), DockerError>(())
            });
        }
        self.rt
            .block_on(futures_util::future::try_join_all(jobs))
            .map_err(be)?;
        self.installed.extend(now_installed);
        Ok(())
    }
}

/// Links are iptables and tc rules inside the containers: cuts drop packets one
/// way, loss has no duplication, and delay needs netem (else a rate limit).
impl LinkControl for DockerBackend {
    fn link_caps(&self) -> LinkCaps {
        LinkCaps {
            one_way_messages: false,
            duplicate: false,
            delay: self.netem,
            jitter: self.netem,
            rate_limit_kbit: Some(SLOW_RATE_KBIT),
        }
    }

    fn apply_links(&mut self, want: &LinkFaults) -> Result<(), BackendError> {
        self.links = want.clone();
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.sync_rules(&all)
    }
}
