//! The runtime's [`Device`]: one file per log in the node's data directory,
//! `sync_data` for durability (protocol.md §6).

use rollcall_node_core::store::{Device, LogFile, Store, StoreError};
use rollcall_node_core::types::CommittedBlock;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The node's files.
pub struct FsDevice {
    dir: PathBuf,
    files: [File; 2],
}

fn idx(file: LogFile) -> usize {
    match file {
        LogFile::Blocks => 0,
        LogFile::Sign => 1,
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .append(true)
        .open(path)
}

/// Adds the path to an I/O error, so a failure names its file.
fn at<T>(path: &Path, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

impl FsDevice {
    /// Opens (creating) the logs in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        at(dir, std::fs::create_dir_all(dir))?;
        let open = |f: LogFile| {
            let p = dir.join(f.name());
            at(&p, open_log(&p))
        };
        Ok(FsDevice {
            dir: dir.to_path_buf(),
            files: [open(LogFile::Blocks)?, open(LogFile::Sign)?],
        })
    }

    fn path(&self, file: LogFile) -> PathBuf {
        self.dir.join(file.name())
    }
}

impl Device for FsDevice {
    fn read(&self, file: LogFile) -> io::Result<Vec<u8>> {
        // Positioned reads: the append handle's cursor is not ours to move.
        let f = &self.files[idx(file)];
        let p = self.path(file);
        let len = at(&p, f.metadata())?.len();
        let mut data = vec![0u8; len as usize];
        at(&p, f.read_exact_at(&mut data, 0))?;
        Ok(data)
    }

    fn read_at(&self, file: LogFile, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        at(
            &self.path(file),
            self.files[idx(file)].read_exact_at(buf, offset),
        )
    }

    fn append(&mut self, file: LogFile, data: &[u8]) -> io::Result<()> {
        let p = self.path(file);
        at(&p, self.files[idx(file)].write_all(data))
    }

    fn sync(&mut self, file: LogFile) -> io::Result<()> {
        let p = self.path(file);
        at(&p, self.files[idx(file)].sync_data())
    }

    fn truncate(&mut self, file: LogFile, len: u64) -> io::Result<()> {
        let p = self.path(file);
        let f = &self.files[idx(file)];
        at(&p, f.set_len(len))?;
        at(&p, f.sync_all())
    }

    fn replace(&mut self, file: LogFile, data: &[u8]) -> io::Result<()> {
        // Temp file, fsync, rename over the log, fsync the directory.
        let path = self.path(file);
        let tmp = self.dir.join(format!("{}.tmp", file.name()));
        let mut t = at(&tmp, File::create(&tmp))?;
        at(&tmp, t.write_all(data))?;
        at(&tmp, t.sync_all())?;
        at(&path, std::fs::rename(&tmp, &path))?;
        at(&self.dir, File::open(&self.dir).and_then(|d| d.sync_all()))?;
        self.files[idx(file)] = at(&path, open_log(&path))?;
        Ok(())
    }
}

/// Opens the store in a node's data directory, cutting off a torn tail.
pub fn open(dir: &Path) -> Result<Store<FsDevice>, StoreError> {
    let dev = FsDevice::open(dir).map_err(|source| StoreError::Io {
        file: "data directory",
        source,
    })?;
    Store::open(dev)
}

/// Every block stored in a node's data directory (a stopped node's chain).
pub fn read_chain(dir: &Path) -> Result<Vec<CommittedBlock>, StoreError> {
    let store = open(dir)?;
    store.blocks(1, store.height())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_node_core::consensus::{Output, Persist, SignState, SignStep};

    fn cb(h: u64) -> CommittedBlock {
        CommittedBlock::for_test(h)
    }

    fn blocks(hs: std::ops::RangeInclusive<u64>) -> Output {
        Output {
            persist: hs.map(|h| Persist::Block(Box::new(cb(h)))).collect(),
            effects: vec![],
        }
    }

    /// The frame of one record as the first store format wrote it: length, CRC32,
    /// postcard payload (protocol.md §6); the on-disk bytes must not change.
    fn frame_of<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let payload = postcard::to_allocvec(v).unwrap();
        let mut f = (payload.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        f.extend_from_slice(&payload);
        f
    }

    #[test]
    fn round_trip_torn_tail_and_unchanged_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let state = SignState {
            height: 4,
            round: 1,
            step: SignStep::Prevote,
            block: None,
            locked: None,
            pol: vec![],
            own: vec![],
        };
        {
            let mut s = open(dir.path()).unwrap();
            assert_eq!(s.height(), 0);
            let mut out = blocks(1..=3);
            out.persist
                .push(Persist::SignState(Box::new(state.clone())));
            let fx = s.commit(out).unwrap();
            assert!(fx.is_empty());
            assert_eq!(s.block(2).unwrap().unwrap().block.height, 2);
            assert!(s.block(9).unwrap().is_none());
        }
        let bytes = std::fs::read(dir.path().join("blocks.log")).unwrap();
        let expect: Vec<u8> = (1..=3).flat_map(|h| frame_of(&cb(h))).collect();
        assert_eq!(bytes, expect, "blocks.log frames are byte-identical");
        let sign = std::fs::read(dir.path().join("sign.log")).unwrap();
        assert_eq!(sign, frame_of(&state));
        // A torn write: half a frame at the end.
        let p = dir.path().join("blocks.log");
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut s = open(dir.path()).unwrap();
        assert_eq!(s.height(), 3);
        assert_eq!(s.truncated_bytes(), 6);
        assert_eq!(s.sign_state().unwrap().height, 4);
        let _ = s.commit(blocks(4..=4)).unwrap();
        drop(s);
        assert_eq!(read_chain(dir.path()).unwrap().len(), 4);
    }

    #[test]
    fn a_flipped_byte_is_caught_by_the_crc_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path()).unwrap();
        let _ = s.commit(blocks(1..=1)).unwrap();
        drop(s);
        let p = dir.path().join("blocks.log");
        let mut data = std::fs::read(&p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&p, data).unwrap();
        let s = open(dir.path()).unwrap();
        assert_eq!(s.height(), 0);
    }

    #[test]
    fn replace_rewrites_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = FsDevice::open(dir.path()).unwrap();
        d.append(LogFile::Sign, b"old old old").unwrap();
        d.replace(LogFile::Sign, b"new").unwrap();
        d.append(LogFile::Sign, b"+").unwrap();
        assert_eq!(d.read(LogFile::Sign).unwrap(), b"new+");
        assert!(!dir.path().join("sign.log.tmp").exists());
    }
}
