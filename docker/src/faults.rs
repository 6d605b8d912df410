//! Network faults applied inside a node container: iptables partitions and loss in a
//! dedicated `ROLLCALL` chain, and `tc` rate limits (netem only where the kernel has it).
//!
//! All rules live in the container's own network namespace, so they vanish when the
//! container restarts; callers re-apply them after a restart if the fault still holds.

use std::net::Ipv4Addr;

use tracing::{debug, warn};

use crate::cluster::Container;
use crate::DockerError;

/// The iptables chain holding every rollcall rule, hooked from INPUT and OUTPUT.
pub const CHAIN: &str = "ROLLCALL";

/// Absolute paths: busybox `sh` prefers its own applets (it has a `tc` that lacks
/// htb/tbf options), so scripts must name iproute2's and iptables' binaries explicitly.
const IPT: &str = "/usr/sbin/iptables";
/// iproute2 `tc` inside the image.
const TC: &str = "/usr/sbin/tc";

/// The interface of the run network inside the container.
const DEV: &str = "eth0";

/// Shell that creates the chain and hooks it once (idempotent).
fn ensure_chain_script() -> String {
    format!(
        "{IPT} -w -N {CHAIN} 2>/dev/null; \
         {IPT} -w -C INPUT -j {CHAIN} 2>/dev/null || {IPT} -w -I INPUT 1 -j {CHAIN}; \
         {IPT} -w -C OUTPUT -j {CHAIN} 2>/dev/null || {IPT} -w -I OUTPUT 1 -j {CHAIN}"
    )
}

/// Packets netem may hold at once. Its default (1000) drops what a delay of seconds
/// (the `async` nemesis: up to 3× the base round timeouts, issue 16) holds back at a
/// busy node's packet rate; a drop is loss, not delay, so the queue is made long
/// enough for the delay instead.
pub const NETEM_LIMIT: u32 = 100_000;

/// A rate limit on a node's outgoing traffic (the `slow` nemesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowLink {
    /// Rate in kbit/s.
    pub rate_kbit: u32,
    /// Extra delay, applied only if netem works on this kernel.
    pub delay_ms: Option<u32>,
    /// Uniform jitter around the delay (netem), ms; 0 for none.
    pub jitter_ms: u32,
}

/// What [`Container::slow`] actually installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowApplied {
    /// True when the delay was installed with netem; false when only the rate limit is.
    pub delay: bool,
}

impl Container {
    /// Creates the `ROLLCALL` chain and hooks it from INPUT and OUTPUT (idempotent).
    pub async fn ensure_chain(&self) -> Result<(), DockerError> {
        self.sh(&ensure_chain_script()).await.map(|_| ())
    }

    /// Drops every packet from `peers` that arrives here: the directed links
    /// peer → this node are cut, this node → peer still delivers (a one-way
    /// partition, harness.md §5; over TCP a connection still needs both ways).
    pub async fn block_from(&self, peers: &[Ipv4Addr]) -> Result<(), DockerError> {
        let mut script = ensure_chain_script();
        for p in peers {
            // The chain is hooked from INPUT and OUTPUT; only inbound packets carry
            // the peer's source address, so this rule matches peer → here only.
            script.push_str(&format!("; {IPT} -w -A {CHAIN} -s {p} -j DROP"));
        }
        script.push_str(&format!("; {IPT} -w -S {CHAIN} >/dev/null"));
        debug!(container = %self.name, ?peers, "block from");
        self.sh(&script).await.map(|_| ())
    }

    /// Cuts this node off from `peers` in both directions (DROP on source and destination).
    ///
    /// One call cuts both directions; [`Container::block_from`] cuts one.
    pub async fn block(&self, peers: &[Ipv4Addr]) -> Result<(), DockerError> {
        let mut script = ensure_chain_script();
        for p in peers {
            script.push_str(&format!(
                "; {IPT} -w -A {CHAIN} -s {p} -j DROP && {IPT} -w -A {CHAIN} -d {p} -j DROP"
            ));
        }
        script.push_str(&format!("; {IPT} -w -S {CHAIN} >/dev/null"));
        debug!(container = %self.name, ?peers, "block");
        self.sh(&script).await.map(|_| ())
    }

    /// Drops each outgoing packet to `peers` with probability `p` (the `flaky` nemesis).
    pub async fn lossy(&self, peers: &[Ipv4Addr], p: f64) -> Result<(), DockerError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(DockerError::Invalid(format!(
                "loss probability {p} is not in [0, 1]"
            )));
        }
        let mut script = ensure_chain_script();
        for peer in peers {
            script.push_str(&format!(
                "; {IPT} -w -A {CHAIN} -d {peer} -m statistic --mode random --probability {p:.4} -j DROP"
            ));
        }
        script.push_str(&format!("; {IPT} -w -S {CHAIN} >/dev/null"));
        debug!(container = %self.name, ?peers, p, "loss");
        self.sh(&script).await.map(|_| ())
    }

    /// Removes every partition and loss rule: one `iptables -F ROLLCALL`.
    ///
    /// A missing chain (fresh or restarted container) counts as healed.
    pub async fn heal(&self) -> Result<(), DockerError> {
        let out = self.exec(&[IPT, "-w", "-F", CHAIN]).await?;
        if out.success() || out.stderr.contains("No chain") || out.stderr.contains("does not exist")
        {
            Ok(())
        } else {
            Err(DockerError::ExecFailed {
                container: self.name.clone(),
                command: format!("{IPT} -w -F {CHAIN}"),
                exit_code: out.exit_code,
                stderr: out.stderr.trim().to_string(),
            })
        }
    }

    /// The current `ROLLCALL` rules (`iptables -S`), empty if the chain does not exist.
    pub async fn rules(&self) -> Result<Vec<String>, DockerError> {
        let out = self.exec(&[IPT, "-w", "-S", CHAIN]).await?;
        if !out.success() {
            return Ok(Vec::new());
        }
        Ok(out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("-N"))
            .map(str::to_string)
            .collect())
    }

    /// Whether `tc qdisc ... netem` works here (the test machines' kernel lacks it).
    ///
    /// Tries to add a netem root qdisc and removes it again on success.
    pub async fn netem_available(&self) -> Result<bool, DockerError> {
        let out = self
            .exec(&[
                TC, "qdisc", "add", "dev", DEV, "root", "netem", "delay", "10ms",
            ])
            .await?;
        if out.success() {
            self.exec(&[TC, "qdisc", "del", "dev", DEV, "root"]).await?;
        }
        debug!(container = %self.name, netem = out.success(), "netem probe");
        Ok(out.success())
    }

    /// Rate-limits traffic from this node: to `peers` only (htb + u32 filters) or, with
    /// no peers, all of it (tbf). Adds netem delay when asked and available.
    pub async fn slow(
        &self,
        link: SlowLink,
        peers: &[Ipv4Addr],
    ) -> Result<SlowApplied, DockerError> {
        if link.rate_kbit == 0 {
            return Err(DockerError::Invalid("rate_kbit must be > 0".into()));
        }
        let netem = match link.delay_ms {
            Some(_) => self.netem_available().await?,
            None => false,
        };
        if link.delay_ms.is_some() && !netem {
            warn!(container = %self.name, "netem not available: applying the rate limit only");
        }
        let rate = link.rate_kbit;
        // Burst must hold at least one MTU-sized packet per timer tick.
        let burst = (rate / 8).max(16);
        let mut script = format!("{TC} qdisc del dev {DEV} root 2>/dev/null; ");
        if peers.is_empty() {
            script.push_str(&format!(
                "{TC} qdisc add dev {DEV} root handle 1: tbf rate {rate}kbit burst {burst}kb latency 400ms"
            ));
            if let (true, Some(d)) = (netem, link.delay_ms) {
                script.push_str(&format!(
                    " && {TC} qdisc add dev {DEV} parent 1:1 handle 10: netem delay {d}ms {}ms limit {NETEM_LIMIT}",
                    link.jitter_ms
                ));
            }
        } else {
            script.push_str(&format!(
                "{TC} qdisc add dev {DEV} root handle 1: htb default 10 \
                 && {TC} class add dev {DEV} parent 1: classid 1:10 htb rate 10gbit \
                 && {TC} class add dev {DEV} parent 1: classid 1:20 htb rate {rate}kbit ceil {rate}kbit burst {burst}kb"
            ));
            if let (true, Some(d)) = (netem, link.delay_ms) {
                script.push_str(&format!(
                    " && {TC} qdisc add dev {DEV} parent 1:20 handle 20: netem delay {d}ms {}ms limit {NETEM_LIMIT}",
                    link.jitter_ms
                ));
            }
            for p in peers {
                script.push_str(&format!(
                    " && {TC} filter add dev {DEV} protocol ip parent 1: prio 1 u32 match ip dst {p}/32 flowid 1:20"
                ));
            }
        }
        self.sh(&script).await?;
        Ok(SlowApplied { delay: netem })
    }

    /// Removes any rate limit or delay (restores the default qdisc).
    pub async fn unslow(&self) -> Result<(), DockerError> {
        self.exec(&[TC, "qdisc", "del", "dev", DEV, "root"]).await?;
        Ok(())
    }

    /// Heals everything this module can install: iptables rules and tc qdiscs.
    pub async fn heal_all(&self) -> Result<(), DockerError> {
        self.heal().await?;
        self.unslow().await
    }
}
