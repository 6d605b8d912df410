//! The simulator's disk: files in memory with the crash semantics of a real disk
//! (the model TigerBeetle's simulated storage and Jepsen's lazyfs use):
//!
//! - a crash keeps everything that was synced;
//! - of the appends since the last sync, a crash keeps a random prefix: whole
//!   appends, then possibly a torn part of the next one (a prefix of it), and loses
//!   the rest; most of the time it keeps none;
//! - files are cut independently, so unsynced writes to different files may
//!   persist out of order (the later one kept, the earlier one lost).
//!
//! The choices come from the caller's RNG (the simulator's seeded one), so a run is
//! replayable; a crash draws nothing when no file holds unsynced bytes, which keeps
//! runs whose writes are always synced in one step byte-identical.
//!
//! The lying mode (a test-only broken environment) acknowledges every sync but
//! forgets the writes synced in the last [`LIE_WINDOW_NS`] of simulated time on a
//! crash, like a disk that ignores fsync.

use super::{Device, LogFile};
use rand::Rng;
use std::io;

/// How much a lying disk forgets on a crash.
pub const LIE_WINDOW_NS: u64 = 1_000_000_000;

#[derive(Clone, Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    /// Bytes a crash keeps.
    synced: u64,
    /// End offsets of the appends since the last sync, in order (the units a
    /// crash keeps whole or tears).
    unsynced: Vec<u64>,
    /// Lying mode: syncs of the last window, (time, length), oldest first; they
    /// become durable once older than the window.
    pending: Vec<(u64, u64)>,
}

impl MemFile {
    /// The length a crash leaves: the synced bytes plus a random prefix of the
    /// unsynced appends (whole ones, then maybe a torn part of the next).
    fn crash_len<R: Rng>(&self, rng: &mut R) -> u64 {
        let n = self.unsynced.len();
        if n == 0 || self.data.len() as u64 <= self.synced {
            return self.synced;
        }
        // Half the time the page cache is simply gone.
        if rng.gen_bool(0.5) {
            return self.synced;
        }
        let whole = rng.gen_range(0..=n);
        let kept = if whole == 0 {
            self.synced
        } else {
            self.unsynced[whole - 1]
        };
        match self.unsynced.get(whole) {
            // Tear the next append: keep a strict prefix of it.
            Some(&end) if end > kept + 1 && rng.gen_bool(0.5) => rng.gen_range(kept + 1..end),
            _ => kept,
        }
    }
}

/// An in-memory [`Device`] with a simulated clock.
#[derive(Clone, Debug, Default)]
pub struct MemDevice {
    files: [MemFile; 2],
    lying: bool,
    now_ns: u64,
    /// Injected failure (the `disk` nemesis): every append or sync fails.
    failure: Option<IoFailure>,
}

/// A failing disk (issue 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFailure {
    /// Every append fails with ENOSPC: the disk is full.
    Full,
    /// Every sync fails with EIO (what was written may or may not be on disk).
    SyncFails,
}

/// Linux errno values, so the node sees the error a real disk gives.
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

fn idx(file: LogFile) -> usize {
    match file {
        LogFile::Blocks => 0,
        LogFile::Sign => 1,
    }
}

impl MemDevice {
    /// An empty disk; `lying` makes it lose the last second of syncs on a crash.
    pub fn new(lying: bool) -> Self {
        MemDevice {
            lying,
            ..Default::default()
        }
    }

    /// Sets the simulated time of the next operations.
    pub fn set_now(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let cutoff = self.now_ns.saturating_sub(LIE_WINDOW_NS);
        for f in &mut self.files {
            let old = f.pending.partition_point(|(t, _)| *t <= cutoff);
            if let Some((_, len)) = f.pending.drain(..old).next_back() {
                f.synced = f.synced.max(len);
            }
        }
    }

    /// A clean crash at `now_ns`: every file keeps exactly its synced bytes.
    pub fn crash(&mut self, now_ns: u64) {
        self.set_now(now_ns);
        for f in &mut self.files {
            f.pending.clear();
            f.unsynced.clear();
            f.data.truncate(f.synced as usize);
        }
    }

    /// A crash at `now_ns` with a real disk's semantics (module docs): synced bytes
    /// kept, each file independently keeps a random prefix of its unsynced appends,
    /// possibly torn. Draws from `rng` only if some file holds unsynced bytes.
    pub fn crash_with<R: Rng>(&mut self, now_ns: u64, rng: &mut R) {
        self.set_now(now_ns);
        for f in &mut self.files {
            let keep = f.crash_len(rng);
            f.pending.clear();
            f.unsynced.clear();
            f.data.truncate(keep as usize);
            f.synced = keep;
        }
    }

    /// Flips one bit at byte `offset` of `file`, synced or not (bit rot, a bad
    /// sector); `false` if the file is shorter.
    pub fn flip_bit(&mut self, file: LogFile, offset: u64, bit: u8) -> bool {
        let f = &mut self.files[idx(file)];
        match f.data.get_mut(offset as usize) {
            Some(b) => {
                *b ^= 1 << (bit % 8);
                true
            }
            None => false,
        }
    }

    /// Makes appends (`Full`) or syncs (`SyncFails`) fail until set to `None`.
    pub fn set_failure(&mut self, failure: Option<IoFailure>) {
        self.failure = failure;
    }

    /// Cuts `file` to `len` bytes, synced bytes included (a lost tail).
    pub fn cut(&mut self, file: LogFile, len: u64) {
        let f = &mut self.files[idx(file)];
        f.data.truncate(len as usize);
        f.synced = f.synced.min(len);
        f.unsynced.retain(|e| *e <= len);
    }

    /// Whether some file holds bytes a crash could lose.
    pub fn has_unsynced(&self) -> bool {
        self.files.iter().any(|f| f.data.len() as u64 > f.synced)
    }

    /// Bytes of `file` a crash now would keep.
    pub fn synced_len(&self, file: LogFile) -> u64 {
        self.files[idx(file)].synced
    }

    /// Bytes of `file` written so far.
    pub fn len(&self, file: LogFile) -> u64 {
        self.files[idx(file)].data.len() as u64
    }

    /// Whether nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.files.iter().all(|f| f.data.is_empty())
    }
}

impl Device for MemDevice {
    fn read(&self, file: LogFile) -> io::Result<Vec<u8>> {
        Ok(self.files[idx(file)].data.clone())
    }

    fn read_at(&self, file: LogFile, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = &self.files[idx(file)].data;
        let end = (offset as usize).checked_add(buf.len());
        match end.and_then(|e| data.get(offset as usize..e)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: read past the end", file.name()),
            )),
        }
    }

    fn append(&mut self, file: LogFile, data: &[u8]) -> io::Result<()> {
        if self.failure == Some(IoFailure::Full) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let f = &mut self.files[idx(file)];
        f.data.extend_from_slice(data);
        f.unsynced.push(f.data.len() as u64);
        Ok(())
    }

    fn sync(&mut self, file: LogFile) -> io::Result<()> {
        if self.failure == Some(IoFailure::SyncFails) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let now = self.now_ns;
        let f = &mut self.files[idx(file)];
        let len = f.data.len() as u64;
        f.unsynced.clear();
        if self.lying {
            f.pending.push((now, len));
        } else {
            f.synced = len;
        }
        Ok(())
    }

    fn truncate(&mut self, file: LogFile, len: u64) -> io::Result<()> {
        let f = &mut self.files[idx(file)];
        f.data.truncate(len as usize);
        f.synced = f.synced.min(len);
        f.unsynced.retain(|e| *e < len);
        if len > f.synced && f.unsynced.last() != Some(&len) {
            f.unsynced.push(len);
        }
        for p in &mut f.pending {
            p.1 = p.1.min(len);
        }
        Ok(())
    }

    fn replace(&mut self, file: LogFile, data: &[u8]) -> io::Result<()> {
        match self.failure {
            Some(IoFailure::Full) => return Err(io::Error::from_raw_os_error(ENOSPC)),
            Some(IoFailure::SyncFails) => return Err(io::Error::from_raw_os_error(EIO)),
            None => {}
        }
        let f = &mut self.files[idx(file)];
        f.data = data.to_vec();
        f.synced = f.data.len() as u64;
        f.unsynced.clear();
        f.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Appends `a`, syncs, appends `b` and `c` to Blocks, then `x` to Sign, and
    /// crashes with `seed`; returns what each file kept.
    fn crashed(seed: u64) -> (Vec<u8>, Vec<u8>) {
        let mut d = MemDevice::new(false);
        d.append(LogFile::Blocks, b"aaaa").unwrap();
        d.sync(LogFile::Blocks).unwrap();
        d.append(LogFile::Blocks, b"bbbb").unwrap();
        d.append(LogFile::Blocks, b"cccc").unwrap();
        d.append(LogFile::Sign, b"xxxx").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        d.crash_with(7, &mut rng);
        assert!(
            !d.has_unsynced(),
            "after a crash everything left is durable"
        );
        (
            d.read(LogFile::Blocks).unwrap(),
            d.read(LogFile::Sign).unwrap(),
        )
    }

    #[test]
    fn a_real_crash_keeps_the_synced_bytes_and_a_prefix_of_the_rest() {
        let written = b"aaaabbbbcccc";
        let mut kept_lens = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let (blocks, sign) = crashed(seed);
            assert!(blocks.len() >= 4, "synced bytes survive (seed {seed})");
            assert_eq!(
                &written[..blocks.len()],
                &blocks[..],
                "a prefix (seed {seed})"
            );
            assert_eq!(&b"xxxx"[..sign.len()], &sign[..]);
            kept_lens.insert(blocks.len());
        }
        // Every outcome occurs: all unsynced lost, whole appends kept.
        for len in [4, 8, 12] {
            assert!(kept_lens.contains(&len), "{len} never kept: {kept_lens:?}");
        }
    }

    #[test]
    fn a_real_crash_may_tear_the_last_append() {
        let torn = (0..400).any(|seed| {
            let (blocks, _) = crashed(seed);
            blocks.len() % 4 != 0
        });
        assert!(torn, "no seed tore an append");
    }

    #[test]
    fn unsynced_writes_to_different_files_persist_out_of_order() {
        // Sign was written after both block appends; a crash can keep it while
        // losing them.
        let reordered = (0..400).any(|seed| {
            let (blocks, sign) = crashed(seed);
            blocks.len() == 4 && sign.len() == 4
        });
        assert!(
            reordered,
            "no seed kept the later write and lost the earlier"
        );
    }

    #[test]
    fn a_crash_with_nothing_unsynced_draws_nothing() {
        let mut d = MemDevice::new(false);
        d.append(LogFile::Sign, b"s").unwrap();
        d.sync(LogFile::Sign).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let before = rng.clone().gen::<u64>();
        d.crash_with(0, &mut rng);
        assert_eq!(rng.gen::<u64>(), before, "the RNG stream is untouched");
        assert_eq!(d.read(LogFile::Sign).unwrap(), b"s");
    }

    #[test]
    fn a_crash_keeps_exactly_the_synced_bytes() {
        let mut d = MemDevice::new(false);
        d.append(LogFile::Blocks, b"abc").unwrap();
        d.sync(LogFile::Blocks).unwrap();
        d.append(LogFile::Blocks, b"def").unwrap();
        d.append(LogFile::Sign, b"x").unwrap();
        assert_eq!(d.synced_len(LogFile::Blocks), 3);
        d.crash(0);
        assert_eq!(d.read(LogFile::Blocks).unwrap(), b"abc");
        assert!(d.read(LogFile::Sign).unwrap().is_empty());
    }

    #[test]
    fn a_lying_disk_forgets_the_last_second_of_syncs() {
        let mut d = MemDevice::new(true);
        d.set_now(1_000);
        d.append(LogFile::Blocks, b"old").unwrap();
        d.sync(LogFile::Blocks).unwrap();
        d.set_now(1_000 + LIE_WINDOW_NS / 2);
        d.append(LogFile::Blocks, b"new").unwrap();
        d.sync(LogFile::Blocks).unwrap();
        d.crash(1_000 + LIE_WINDOW_NS);
        assert_eq!(d.read(LogFile::Blocks).unwrap(), b"old");
    }
}
