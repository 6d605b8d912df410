//! Link faults inside the containers: the iptables/tc rules each node's namespace
//! needs for the nemesis's link-fault state, and bringing them in line.

use super::{be, DockerBackend, NodeRules, State, SLOW_RATE_KBIT};
use crate::backend::BackendError;
use rollcall_docker::{DockerError, SlowLink};

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
