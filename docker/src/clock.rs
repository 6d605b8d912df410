//! One node's clock, inside its container only (harness.md §5 `clock`, issue 16).
//!
//! The node image carries Debian's libfaketime (the thread-safe `libfaketimeMT`), and
//! the image's entrypoint preloads it into the node process alone (`env LD_PRELOAD=…
//! rollcall-node`), so `docker exec` commands (iptables, tc, busybox) keep true time
//! and the host's clock is never touched (busybox is static: no preload can reach it): nothing here calls `clock_settime`, and the
//! containers have no `CAP_SYS_TIME`. libfaketime reads its setting from
//! [`CLOCK_FILE_IN_CONTAINER`] on every time call (`FAKETIME_NO_CACHE=1`); that file
//! lives in a host directory bind-mounted read-only outside the node's home, and the
//! harness rewrites it atomically from the host ([`write_control`]).
//!
//! What libfaketime 0.9.10 does with the setting (measured, see docs/DESIGN.md):
//! `+S x1` reads true time plus S seconds in any process, whenever it started;
//! `@E xR` (with `FAKETIME_FMT=%s`) makes the clock read E at the moment the process
//! reads the new setting and advance at R times true speed from there. Both
//! `CLOCK_REALTIME` and `CLOCK_MONOTONIC` are faked alike (so tokio's `Instant`, and
//! with it every node timer, follows the fake clock), and libfaketime also scales the
//! timeouts of `epoll_wait`, `poll` and `nanosleep` by 1/R, so a 2× clock fires timers
//! twice as often in real time. `+S xR` with R ≠ 1 is never written: its rate counts
//! from the process's start, so changing it steps the clock by the process's age.

use std::path::Path;

use crate::DockerError;

/// Where the node image keeps libfaketime (copied from the host's `libfaketime`
/// package, whatever its multiarch directory).
pub const FAKETIME_LIB_IN_IMAGE: &str = "/usr/lib/faketime/libfaketimeMT.so.1";

/// GNU `date` in the image: busybox is static, so `LD_PRELOAD` cannot reach its
/// `date` (which therefore always reads true time); this dynamically linked one run
/// under [`with_faketime`] reads what the node reads.
pub const DYNAMIC_DATE: &str = "/usr/local/bin/gnu-date";

/// The directory the host's clock directory is mounted on (read-only), outside the
/// node's home so disk faults and wipes of `/data` never touch it.
pub const CLOCK_DIR_IN_CONTAINER: &str = "/run/rollcall-clock";

/// The control file's name inside the clock directory.
pub const CLOCK_FILE: &str = "faketime.rc";

/// The control file's path inside the container.
pub const CLOCK_FILE_IN_CONTAINER: &str = "/run/rollcall-clock/faketime.rc";

/// A control-file line that keeps true time.
pub const TRUE_TIME: &str = "+0 x1";

/// The environment that puts a process on the node's fake clock: the node gets it
/// from the image entrypoint; a test's `docker exec` passes it to see what the node
/// sees (through `env`), and nothing else gets it.
pub fn faketime_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LD_PRELOAD", FAKETIME_LIB_IN_IMAGE),
        ("FAKETIME_TIMESTAMP_FILE", CLOCK_FILE_IN_CONTAINER),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_FMT", "%s"),
    ]
}

/// `env K=V… cmd…`: runs `cmd` inside a container with the node's fake clock.
pub fn with_faketime(cmd: &[&str]) -> Vec<String> {
    let mut v = vec!["/bin/env".to_string()];
    v.extend(faketime_env().iter().map(|(k, val)| format!("{k}={val}")));
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

/// One node's fake clock as the harness models it: it read `anchor_fake_ns` at
/// host time `anchor_real_ns` and runs at `rate_pct` percent of true speed since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeClock {
    anchor_real_ns: i128,
    anchor_fake_ns: i128,
    rate_pct: u32,
}

impl FakeClock {
    /// True time: no offset, rate 100 %.
    pub fn true_time() -> Self {
        FakeClock {
            anchor_real_ns: 0,
            anchor_fake_ns: 0,
            rate_pct: 100,
        }
    }

    /// What the clock reads at host time `real_ns` (ns since the Unix epoch).
    pub fn fake_ns(&self, real_ns: i128) -> i128 {
        self.anchor_fake_ns + (real_ns - self.anchor_real_ns) * i128::from(self.rate_pct) / 100
    }

    /// How far ahead of true time it is at `real_ns` (negative: behind), ms.
    pub fn offset_ms(&self, real_ns: i128) -> i64 {
        i64::try_from((self.fake_ns(real_ns) - real_ns) / 1_000_000).unwrap_or(i64::MAX)
    }

    /// The rate, percent of true speed.
    pub fn rate_pct(&self) -> u32 {
        self.rate_pct
    }

    /// At host time `real_ns`: jump by `jump_ms` (negative: back), then run at
    /// `rate_pct` (clamped to at least 1 %); the clock is continuous but for the jump.
    pub fn set(&mut self, real_ns: i128, rate_pct: u32, jump_ms: i64) {
        let now = self.fake_ns(real_ns) + i128::from(jump_ms) * 1_000_000;
        *self = FakeClock {
            anchor_real_ns: real_ns,
            anchor_fake_ns: now,
            rate_pct: rate_pct.max(1),
        };
    }

    /// The control-file line for this clock at host time `real_ns`: `+S x1` at the
    /// true rate (exact in any process), else `@E xR` anchored at `real_ns` (exact
    /// for a running process that reads it now; a process started later starts at E).
    pub fn line(&self, real_ns: i128) -> String {
        if self.rate_pct == 100 {
            let off = self.fake_ns(real_ns) - real_ns;
            format!("{} x1", signed_secs(off))
        } else {
            let fake = self.fake_ns(real_ns);
            let secs = signed_secs(fake);
            let at = secs.trim_start_matches('+');
            format!("@{at} x{}.{:02}", self.rate_pct / 100, self.rate_pct % 100)
        }
    }
}

/// `ns` as signed seconds with millisecond digits: `+1.250`, `-0.004`.
fn signed_secs(ns: i128) -> String {
    let ms = ns / 1_000_000;
    let sign = if ms < 0 { '-' } else { '+' };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// Host time now, ns since the Unix epoch (the clock every container shares).
pub fn host_now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The read-only bind of a node's clock directory (created if missing) at
/// [`CLOCK_DIR_IN_CONTAINER`], for [`crate::NodeSpec::clock_dir`]; `None` there: true time.
pub fn bind(dir: &Path) -> Result<String, DockerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DockerError::io(format!("create clock dir {}", dir.display()), e))?;
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| DockerError::io(format!("resolve {}", dir.display()), e))?;
    Ok(format!("{}:{CLOCK_DIR_IN_CONTAINER}:ro", abs.display()))
}

/// Writes `line` as the control file in the host clock directory `dir`, atomically
/// (a temporary file renamed over it), so libfaketime never reads half a setting.
pub fn write_control(dir: &Path, line: &str) -> Result<(), DockerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DockerError::io(format!("create {}", dir.display()), e))?;
    let tmp = dir.join(format!(".{CLOCK_FILE}.tmp"));
    let dst = dir.join(CLOCK_FILE);
    std::fs::write(&tmp, format!("{line}\n"))
        .map_err(|e| DockerError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &dst)
        .map_err(|e| DockerError::io(format!("rename to {}", dst.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn true_clock_reads_true_time_and_writes_plus_zero() {
        let c = FakeClock::true_time();
        assert_eq!(c.fake_ns(1_700_000_000 * S), 1_700_000_000 * S);
        assert_eq!(c.line(1_700_000_000 * S), "+0.000 x1");
    }

    #[test]
    fn jumps_and_rates_compose_continuously() {
        let mut c = FakeClock::true_time();
        let t0 = 1_700_000_000 * S;
        c.set(t0, 100, 2_000);
        assert_eq!(c.offset_ms(t0 + 5 * S), 2_000);
        assert_eq!(c.line(t0 + 5 * S), "+2.000 x1");
        c.set(t0 + 10 * S, 50, -500);
        // At t0+10 s it read t0+11.5 s; four true seconds later, two more.
        assert_eq!(c.fake_ns(t0 + 14 * S), t0 + 13 * S + S / 2);
        assert_eq!(c.line(t0 + 14 * S), "@1700000013.500 x0.50");
        c.set(t0 + 14 * S, 200, 0);
        assert_eq!(c.line(t0 + 14 * S), "@1700000013.500 x2.00");
        assert_eq!(c.offset_ms(t0 + 16 * S), 1_500);
        c.set(t0 + 16 * S, 100, 0);
        assert_eq!(c.line(t0 + 20 * S), "+1.500 x1");
        c.set(t0, 100, -1_250);
        assert_eq!(c.line(t0), "+0.250 x1");
        c.set(t0, 100, -1_000);
        assert_eq!(c.line(t0), "-0.750 x1");
    }

    #[test]
    fn env_prefix_runs_a_command_on_the_fake_clock() {
        let v = with_faketime(&["date", "+%s"]);
        assert_eq!(v[0], "/bin/env");
        assert!(v.contains(&format!("LD_PRELOAD={FAKETIME_LIB_IN_IMAGE}")));
        assert_eq!(&v[v.len() - 2..], ["date", "+%s"]);
    }
}
