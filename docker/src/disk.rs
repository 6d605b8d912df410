//! Kernel-level disk faults for node containers (issue 13). A node's home is a host
//! directory bind-mounted into its container, so the harness reaches the node's real
//! store files from the host:
//!
//! - [`damage_file`] corrupts or cuts one of a *stopped* node's files in place
//!   (a flipped bit, a sector of garbage, a cut tail) and syncs it, before the node
//!   restarts on it;
//! - [`DataMount`] is a size-limited tmpfs mounted on the host over a node's data
//!   directory before its container is created (Docker's bind mounts are recursive,
//!   so the container sees it, and it outlives container restarts). [`DataMount::fill`]
//!   shrinks it to what is in use, so the node's next write that needs a page fails
//!   with ENOSPC from the kernel; [`DataMount::drain`] gives the space back.
//!
//! Every data mount's source is `rollcall-<run id>`, so [`unmount_data_mounts`] finds
//! a run's mounts (or every run's) in `/proc/self/mountinfo` and removes them, also
//! after a crash of the harness.

use crate::{Container, DockerError};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of the sector [`Damage::Sector`] overwrites (a disk's smallest write unit).
pub const SECTOR: u64 = 512;
/// The prefix of every data mount's source name (`rollcall-<run id>`).
pub const MOUNT_SOURCE_PREFIX: &str = "rollcall-";

/// How to damage a file. Every parameter is explicit (the caller draws them from its
/// seed), so what [`damage_file`] does is exactly what it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Flip bit `bit` (0–7) of the byte at `offset`.
    BitFlip {
        /// Byte offset in the file.
        offset: u64,
        /// Bit within the byte.
        bit: u8,
    },
    /// Overwrite the [`SECTOR`]-aligned sector holding `offset` (cut at the end of the
    /// file) with garbage drawn from `seed`; every byte of it changes.
    Sector {
        /// Any offset inside the sector.
        offset: u64,
        /// Seed of the garbage.
        seed: u64,
    },
    /// Cut the last `bytes` bytes off (at least one, at most the whole file): a torn
    /// or lost tail, synced bytes included.
    CutTail {
        /// How many bytes to cut.
        bytes: u64,
    },
}

/// What [`damage_file`] did, for the history (`offset`/`bit` as the simulator
/// reports a flip, `cut_bytes` as it reports a cut).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damaged {
    /// The file name (`blocks.log`, `sign.log`).
    pub file: String,
    /// `bit-flip`, `garbage-sector` or `cut-tail`.
    pub kind: &'static str,
    /// First byte changed; for a cut, the new length of the file.
    pub offset: u64,
    /// Bytes changed (a flip: 1; a sector: up to [`SECTOR`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The flipped bit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    /// Bytes cut off the tail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_bytes: Option<u64>,
    /// The file's length before.
    pub len_before: u64,
}

fn io_at(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> DockerError {
    let context = format!("{what} {}", path.display());
    move |e| DockerError::io(context, e)
}

/// splitmix64: garbage bytes from a seed, without a dependency on a random crate.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Damages the file at `path` in place as `how` says and syncs it (the node must be
/// stopped: it would otherwise keep its own view in memory). An offset past the
/// end, a bit above 7 or an empty file is [`DockerError::Invalid`].
pub fn damage_file(path: &Path, how: Damage) -> Result<Damaged, DockerError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_at(path, "open"))?;
    let len = f.metadata().map_err(io_at(path, "stat"))?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let invalid = |why: String| DockerError::Invalid(format!("damage {}: {why}", path.display()));
    let mut done = Damaged {
        file: name,
        kind: "",
        offset: 0,
        bytes: None,
        bit: None,
        cut_bytes: None,
        len_before: len,
    };
    match how {
        Damage::BitFlip { offset, bit } => {
            if offset >= len || bit > 7 {
                return Err(invalid(format!("bit {bit} of byte {offset} of {len}")));
            }
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, offset)
                .map_err(io_at(path, "read"))?;
            b[0] ^= 1 << bit;
            f.write_all_at(&b, offset).map_err(io_at(path, "write"))?;
            (done.kind, done.offset, done.bytes, done.bit) =
                ("bit-flip", offset, Some(1), Some(bit));
        }
        Damage::Sector { offset, seed } => {
            if offset >= len {
                return Err(invalid(format!("sector at {offset} of {len}")));
            }
            let start = offset / SECTOR * SECTOR;
            let mut buf = vec![0u8; (len - start).min(SECTOR) as usize];
            f.read_exact_at(&mut buf, start)
                .map_err(io_at(path, "read"))?;
            let mut state = seed;
            for b in &mut buf {
                // XOR with a non-zero byte: every byte of the sector changes.
                *b ^= (splitmix(&mut state) as u8).max(1);
            }
            f.write_all_at(&buf, start).map_err(io_at(path, "write"))?;
            (done.kind, done.offset, done.bytes) =
                ("garbage-sector", start, Some(buf.len() as u64));
        }
        Damage::CutTail { bytes } => {
            if len == 0 {
                return Err(invalid("the file is empty".into()));
            }
            let cut = bytes.clamp(1, len);
            f.set_len(len - cut).map_err(io_at(path, "truncate"))?;
            (done.kind, done.offset, done.cut_bytes) = ("cut-tail", len - cut, Some(cut));
        }
    }
    f.sync_all().map_err(io_at(path, "sync"))?;
    Ok(done)
}

/// A size-limited tmpfs mounted over a node's data directory (see the module doc).
/// It stays mounted until [`unmount_data_mounts`] removes it (dropping this value
/// does not: the container may still use it).
#[derive(Debug, Clone)]
pub struct DataMount {
    path: PathBuf,
    size: u64,
}

/// One tmpfs `size=` option.
fn size_opt(bytes: u64) -> std::ffi::CString {
    // Digits only: never contains a NUL byte.
    std::ffi::CString::new(format!("size={bytes}")).unwrap_or_default()
}

impl DataMount {
    /// Mounts a tmpfs of `size` bytes at `path` (created if missing), with source
    /// `rollcall-<run_id>`. Needs root (CAP_SYS_ADMIN) on the engine's host; must
    /// happen before the container that binds `path`'s parent is created.
    pub fn mount(path: &Path, size: u64, run_id: &str) -> Result<Self, DockerError> {
        std::fs::create_dir_all(path).map_err(io_at(path, "create"))?;
        let data = std::ffi::CString::new(format!("size={size},mode=0755"))
            .map_err(|e| DockerError::Invalid(e.to_string()))?;
        rustix::mount::mount(
            format!("{MOUNT_SOURCE_PREFIX}{run_id}").as_str(),
            path,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| DockerError::io(format!("mount a tmpfs at {}", path.display()), e.into()))?;
        Ok(DataMount {
            path: path.to_path_buf(),
            size,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full size, bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// (bytes in use, bytes free) now.
    pub fn usage(&self) -> Result<(u64, u64), DockerError> {
        let s = rustix::fs::statvfs(&self.path)
            .map_err(|e| DockerError::io(format!("statvfs {}", self.path.display()), e.into()))?;
        let unit = s.f_frsize.max(1);
        Ok((
            (s.f_blocks - s.f_bfree) * unit,
            s.f_bavail.saturating_mul(unit),
        ))
    }

    fn resize(&self, bytes: u64) -> rustix::io::Result<()> {
        rustix::mount::mount_remount(
            &self.path,
            rustix::mount::MountFlags::empty(),
            size_opt(bytes).as_c_str(),
        )
    }

    /// Makes the mount full: its size shrinks to the pages in use now (the kernel
    /// refuses a size below that, so a write racing in is retried), and the node's
    /// next write that needs a new page fails with ENOSPC. Returns the bytes in use.
    pub fn fill(&self) -> Result<u64, DockerError> {
        let mut last = None;
        for _ in 0..50 {
            let (used, _) = self.usage()?;
            // size=0 would mean "unlimited" to tmpfs: keep at least one page.
            match self.resize(used.max(4096)) {
                Ok(()) => return Ok(used),
                Err(e) => last = Some(e),
            }
        }
        let e = last.map(std::io::Error::from).unwrap_or_else(|| {
            std::io::Error::other("the mount kept growing while it was being filled")
        });
        Err(DockerError::io(format!("fill {}", self.path.display()), e))
    }

    /// Frees the space again: the mount's full size back.
    pub fn drain(&self) -> Result<(), DockerError> {
        self.resize(self.size)
            .map_err(|e| DockerError::io(format!("drain {}", self.path.display()), e.into()))
    }
}

/// Undoes the octal escapes of a `/proc/self/mountinfo` path (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points of tmpfs mounts whose source is `rollcall-<run_id>` (`Some`) or
/// starts with `rollcall-` (`None`: every run), from a `mountinfo` text; deepest first.
pub fn data_mounts_in(mountinfo: &str, run_id: Option<&str>) -> Vec<PathBuf> {
    data_mounts_where(mountinfo, |id| run_id.is_none_or(|r| r == id))
}

/// The data mounts whose run id (`rollcall-<run id>` as the source) `keep` accepts,
/// deepest first.
fn data_mounts_where(mountinfo: &str, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, source) = (r.next()?, r.next()?);
            let ours = source.strip_prefix(MOUNT_SOURCE_PREFIX).is_some_and(&keep);
            (fstype == "tmpfs" && ours).then(|| PathBuf::from(unescape(point)))
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Unmounts (lazily: a container may still hold it) every data mount of `run_id`,
/// or of every run for `None` (`rollcall clean`); returns the mount points removed.
pub fn unmount_data_mounts(run_id: Option<&str>) -> Result<Vec<PathBuf>, DockerError> {
    unmount_where(|info| data_mounts_in(info, run_id))
}

/// Unmounts the data mounts of runs whose owner process is gone (run ids begin with
/// the owner's pid): what a starting run removes, leaving live runs' mounts alone.
pub fn unmount_orphan_data_mounts() -> Result<Vec<PathBuf>, DockerError> {
    unmount_where(|info| data_mounts_where(info, |id| !run_owner_alive(id)))
}

/// Whether the process a run id names (`<pid>-<nanos>`) is alive on this host.
fn run_owner_alive(run_id: &str) -> bool {
    let pid = run_id.split('-').next().and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(crate::cluster::pid_alive)
}

fn unmount_where(pick: impl Fn(&str) -> Vec<PathBuf>) -> Result<Vec<PathBuf>, DockerError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| DockerError::io("read /proc/self/mountinfo", e))?;
    let mut done = Vec::new();
    let mut first_err = None;
    for p in pick(&info) {
        match rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => done.push(p),
            Err(e) => {
                first_err.get_or_insert(DockerError::io(
                    format!("unmount {}", p.display()),
                    e.into(),
                ));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

impl Container {
    /// `None` while the node's process runs (or is paused); once it has exited on its
    /// own, its exit code and the last error line of its log (why it stopped).
    pub async fn exited(&self) -> Result<Option<String>, DockerError> {
        let info = self
            .docker
            .inspect_container(&self.id, None)
            .await
            .map_err(|e| DockerError::api(format!("inspect {}", self.name), e))?;
        let state = info.state.unwrap_or_default();
        if state.running.unwrap_or(false) {
            return Ok(None);
        }
        let code = state.exit_code.unwrap_or(-1);
        let mut logs = self.docker.logs(
            &self.id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .tail("50")
                    .build(),
            ),
        );
        let mut text = String::new();
        while let Some(item) = logs.next().await {
            let chunk = item.map_err(|e| DockerError::api(format!("logs of {}", self.name), e))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        let why = text
            .lines()
            .rev()
            .find(|l| l.contains("error") || l.contains("ERROR"))
            .map(str::trim)
            .unwrap_or("no error line in its log");
        Ok(Some(format!("exited with code {code}: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes that differ between `a` and `b` (equal lengths), as (offset, xor).
    fn diff(a: &[u8], b: &[u8]) -> Vec<(u64, u8)> {
        (a.iter().zip(b))
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (i as u64, x ^ y))
            .collect()
    }

    /// Whether `after` is exactly `before` damaged as `done` says: the check the
    /// tests apply, shown to reject an untouched file below.
    fn matches(before: &[u8], after: &[u8], done: &Damaged) -> bool {
        match done.kind {
            "bit-flip" => {
                let bit = done.bit.unwrap_or(8);
                after.len() == before.len()
                    && diff(before, after) == vec![(done.offset, 1u8 << bit.min(7))]
                    && bit < 8
            }
            "garbage-sector" => {
                let n = done.bytes.unwrap_or(0);
                let d = diff(before, after);
                after.len() == before.len()
                    && n > 0
                    && d.len() as u64 == n
                    && d.iter()
                        .enumerate()
                        .all(|(i, (o, _))| *o == done.offset + i as u64)
            }
            "cut-tail" => {
                let cut = done.cut_bytes.unwrap_or(0);
                cut > 0
                    && after.len() as u64 == before.len() as u64 - cut
                    && after[..] == before[..after.len()]
            }
            _ => false,
        }
    }

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("blocks.log");
        std::fs::write(&p, bytes).expect("write");
        (dir, p)
    }

    fn content() -> Vec<u8> {
        (0..1300u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_damage_changes_exactly_the_bytes_it_reports() {
        let before = content();
        for how in [
            Damage::BitFlip {
                offset: 1000,
                bit: 5,
            },
            Damage::BitFlip { offset: 0, bit: 0 },
            Damage::Sector {
                offset: 700,
                seed: 9,
            },
            // The last sector is short: cut at the end of the file.
            Damage::Sector {
                offset: 1299,
                seed: 1,
            },
            Damage::CutTail { bytes: 37 },
            Damage::CutTail { bytes: 99_999 },
        ] {
            let (_d, p) = file_with(&before);
            let done = damage_file(&p, how).expect("damage");
            let after = std::fs::read(&p).expect("read back");
            assert!(matches(&before, &after, &done), "{how:?} -> {done:?}");
            assert_eq!(done.file, "blocks.log");
            assert_eq!(done.len_before, 1300);
        }
        let (_d, p) = file_with(&before);
        let done = damage_file(
            &p,
            Damage::Sector {
                offset: 700,
                seed: 9,
            },
        )
        .expect("sector");
        assert_eq!((done.offset, done.bytes), (512, Some(512)));
        let done = damage_file(&p, Damage::CutTail { bytes: 99_999 }).expect("cut");
        assert_eq!((done.offset, done.cut_bytes), (0, Some(1300)));
    }

    #[test]
    fn the_check_rejects_a_damage_that_did_not_happen() {
        // A report of damage over an untouched file, or the wrong bit, is caught.
        let before = content();
        let lie = Damaged {
            file: "blocks.log".into(),
            kind: "bit-flip",
            offset: 3,
            bytes: Some(1),
            bit: Some(2),
            cut_bytes: None,
            len_before: 1300,
        };
        assert!(!matches(&before, &before, &lie));
        let mut flipped = before.clone();
        flipped[3] ^= 1 << 4;
        assert!(!matches(&before, &flipped, &lie));
        flipped[3] = before[3] ^ (1 << 2);
        assert!(matches(&before, &flipped, &lie));
    }

    #[test]
    fn out_of_range_damage_is_refused_and_leaves_the_file() {
        let before = content();
        let (_d, p) = file_with(&before);
        for how in [
            Damage::BitFlip {
                offset: 1300,
                bit: 0,
            },
            Damage::BitFlip { offset: 1, bit: 8 },
            Damage::Sector {
                offset: 5000,
                seed: 1,
            },
        ] {
            assert!(matches!(damage_file(&p, how), Err(DockerError::Invalid(_))));
        }
        assert_eq!(std::fs::read(&p).expect("read"), before);
        let (_d, empty) = file_with(&[]);
        assert!(damage_file(&empty, Damage::CutTail { bytes: 1 }).is_err());
    }

    /// Whether a test that needs mount(2) may skip: not root and not in CI.
    fn may_skip_mounts(e: &DockerError) -> bool {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        eprintln!("cannot mount a tmpfs here: {e}");
        !ci && !rustix::process::geteuid().is_root()
    }

    #[test]
    fn a_filled_data_mount_refuses_writes_with_enospc_until_drained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let run = format!("unit-{}", std::process::id());
        let m = match DataMount::mount(&path, 1 << 20, &run) {
            Ok(m) => m,
            Err(e) if may_skip_mounts(&e) => return,
            Err(e) => panic!("mount: {e}"),
        };
        let write = |name: &str, n: usize| std::fs::write(path.join(name), vec![7u8; n]);
        write("blocks.log", 10_000).expect("write before the fault");
        let used = m.fill().expect("fill");
        assert!(used >= 10_000, "{used}");
        let e = write("sign.log", 8192).expect_err("a write on a full mount");
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::NOSPC.raw_os_error()),
            "{e}"
        );
        assert_eq!(m.usage().expect("usage").1, 0, "space left on a full mount");
        m.drain().expect("drain");
        write("sign.log", 8192).expect("a write after the heal");
        assert_eq!(
            std::fs::read(path.join("blocks.log")).expect("read").len(),
            10_000
        );
        let gone = unmount_data_mounts(Some(&run)).expect("unmount");
        assert_eq!(gone, vec![path.clone()]);
        let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            data_mounts_in(&info, Some(&run)).is_empty(),
            "still mounted"
        );
    }

    #[test]
    fn mountinfo_lines_select_one_run_or_every_run() {
        let info = "\
36 25 0:32 / /tmp/rollcall-1-2/n1/data rw,relatime shared:9 - tmpfs rollcall-1-2 rw,size=1024k
37 25 0:33 / /tmp/rollcall-1-2/n2/data rw,relatime - tmpfs rollcall-1-2 rw,size=1024k
38 25 0:34 / /tmp/rollcall-3-4/n1/data rw,relatime - tmpfs rollcall-3-4 rw
39 25 0:35 / /tmp/other rw - tmpfs tmpfs rw
40 25 0:36 / /tmp/a\\040b rw - tmpfs rollcall-9 rw
41 25 8:1 / /srv rw - ext4 rollcall-1-2 rw
";
        let one = data_mounts_in(info, Some("1-2"));
        assert_eq!(
            one,
            vec![
                PathBuf::from("/tmp/rollcall-1-2/n1/data"),
                PathBuf::from("/tmp/rollcall-1-2/n2/data")
            ]
        );
        let all = data_mounts_in(info, None);
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.contains(&PathBuf::from("/tmp/a b")));
        assert!(!all.contains(&PathBuf::from("/tmp/other")));
        assert!(data_mounts_in(info, Some("1")).is_empty());
    }
}
