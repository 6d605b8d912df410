//! The simulator's disk: files in memory that keep, on a crash, exactly what was
//! synced. Each file tracks its synced length, so later fault modes (torn tails,
//! reordered writes) can cut or shuffle the unsynced part on top of it.
//!
//! The lying mode (a test-only broken environment) acknowledges every sync but
//! forgets the writes synced in the last [`LIE_WINDOW_NS`] of simulated time on a
//! crash, like a disk that ignores fsync.

use super::{Device, LogFile};
use std::io;

/// How much a lying disk forgets on a crash.
pub const LIE_WINDOW_NS: u64 = 1_000_000_000;

#[derive(Clone, Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    /// Bytes a crash keeps.
    synced: u64,
    /// Lying mode: syncs of the last window, (time, length), oldest first; they
    /// become durable once older than the window.
    pending: Vec<(u64, u64)>,
}

/// An in-memory [`Device`] with a simulated clock.
#[derive(Clone, Debug, Default)]
pub struct MemDevice {
    files: [MemFile; 2],
    lying: bool,
    now_ns: u64,
}

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

    /// A crash at `now_ns`: every file keeps exactly its synced bytes.
    pub fn crash(&mut self, now_ns: u64) {
        self.set_now(now_ns);
        for f in &mut self.files {
            f.pending.clear();
            f.data.truncate(f.synced as usize);
        }
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
        self.files[idx(file)].data.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self, file: LogFile) -> io::Result<()> {
        let now = self.now_ns;
        let f = &mut self.files[idx(file)];
        let len = f.data.len() as u64;
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
        for p in &mut f.pending {
            p.1 = p.1.min(len);
        }
        Ok(())
    }

    fn replace(&mut self, file: LogFile, data: &[u8]) -> io::Result<()> {
        let f = &mut self.files[idx(file)];
        f.data = data.to_vec();
        f.synced = f.data.len() as u64;
        f.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
