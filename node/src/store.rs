//! Durable storage: an append-only block log and a signing-state log, both framed
//! with a length and a CRC so a torn tail after a crash is detected and cut off
//! (protocol.md §6). Writes are buffered; [`Store::sync`] makes them durable (fsync).

use crate::consensus::SignState;
use crate::types::CommittedBlock;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A record that does not decode.
    #[error("{0}: corrupt record")]
    Corrupt(PathBuf),
}

/// Largest record accepted when reading back.
const MAX_RECORD: u32 = 256 << 20;
/// The signing log is rewritten once it grows past this.
const SIGN_LOG_ROTATE: u64 = 1 << 20;

/// What a restarted node finds on disk.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Committed blocks in height order.
    pub blocks: Vec<CommittedBlock>,
    /// The last signing state.
    pub sign_state: Option<SignState>,
    /// Bytes of torn tail cut off.
    pub truncated_bytes: u64,
}

/// The node's store.
pub struct Store {
    dir: PathBuf,
    blocks: BufWriter<File>,
    blocks_read: File,
    offsets: Vec<(u64, u32)>,
    end: u64,
    sign: BufWriter<File>,
    sign_len: u64,
    dirty_blocks: bool,
    dirty_sign: bool,
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T, StoreError> {
    r.map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads whole frames; returns (payload offset, length) of each good frame and the
/// offset where the good prefix ends.
fn scan(data: &[u8]) -> (Vec<(u64, u32)>, u64) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let start = pos + 8;
        let Some(end) = start.checked_add(len as usize) else {
            break;
        };
        if len > MAX_RECORD || end > data.len() || crc32fast::hash(&data[start..end]) != crc {
            break;
        }
        out.push((start as u64, len));
        pos = end;
    }
    (out, pos as u64)
}

impl Store {
    /// Opens (creating) the store in `dir` and reads back what it holds, cutting off a
    /// torn tail.
    pub fn open(dir: &Path) -> Result<(Store, Recovered), StoreError> {
        io(dir, std::fs::create_dir_all(dir))?;
        let bpath = dir.join("blocks.log");
        let spath = dir.join("sign.log");
        let mut rec = Recovered::default();

        let mut bfile = io(
            &bpath,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&bpath),
        )?;
        let mut data = Vec::new();
        io(&bpath, bfile.read_to_end(&mut data))?;
        let (frames, good) = scan(&data);
        let mut offsets = Vec::with_capacity(frames.len());
        for (off, len) in frames {
            let slice = &data[off as usize..off as usize + len as usize];
            match postcard::from_bytes::<CommittedBlock>(slice) {
                Ok(cb) if cb.block.height == rec.blocks.len() as u64 + 1 => {
                    rec.blocks.push(cb);
                    offsets.push((off, len));
                }
                _ => {
                    return Err(StoreError::Corrupt(bpath));
                }
            }
        }
        let end = good;
        if (data.len() as u64) > good {
            rec.truncated_bytes += data.len() as u64 - good;
            tracing::warn!(
                bytes = data.len() as u64 - good,
                "cutting torn tail of blocks.log"
            );
            io(&bpath, bfile.set_len(good))?;
            io(&bpath, bfile.sync_all())?;
        }
        io(&bpath, bfile.seek(SeekFrom::Start(good)))?;
        let blocks_read = io(&bpath, File::open(&bpath))?;

        let mut sfile = io(
            &spath,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&spath),
        )?;
        let mut sdata = Vec::new();
        io(&spath, sfile.read_to_end(&mut sdata))?;
        let (sframes, sgood) = scan(&sdata);
        if let Some((off, len)) = sframes.last() {
            rec.sign_state =
                postcard::from_bytes(&sdata[*off as usize..(*off + *len as u64) as usize]).ok();
        }
        if (sdata.len() as u64) > sgood {
            rec.truncated_bytes += sdata.len() as u64 - sgood;
            io(&spath, sfile.set_len(sgood))?;
            io(&spath, sfile.sync_all())?;
        }
        io(&spath, sfile.seek(SeekFrom::Start(sgood)))?;

        Ok((
            Store {
                dir: dir.to_path_buf(),
                blocks: BufWriter::with_capacity(1 << 20, bfile),
                blocks_read,
                offsets,
                end,
                sign: BufWriter::new(sfile),
                sign_len: sgood,
                dirty_blocks: false,
                dirty_sign: false,
            },
            rec,
        ))
    }

    /// Last stored height.
    pub fn height(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Appends a committed block (durable after [`Store::sync`]).
    pub fn append_block(&mut self, cb: &CommittedBlock) -> Result<(), StoreError> {
        let path = self.dir.join("blocks.log");
        if cb.block.height != self.height() + 1 {
            return Ok(());
        }
        let payload = postcard::to_allocvec(cb).map_err(|_| StoreError::Corrupt(path.clone()))?;
        let f = frame(&payload);
        io(&path, self.blocks.write_all(&f))?;
        self.offsets.push((self.end + 8, payload.len() as u32));
        self.end += f.len() as u64;
        self.dirty_blocks = true;
        Ok(())
    }

    /// Records the signing state (durable after [`Store::sync`]).
    pub fn save_sign_state(&mut self, s: &SignState) -> Result<(), StoreError> {
        let path = self.dir.join("sign.log");
        let payload = postcard::to_allocvec(s).map_err(|_| StoreError::Corrupt(path.clone()))?;
        if self.sign_len > SIGN_LOG_ROTATE {
            // Rewrite the log with just the latest state: temp file, fsync, rename.
            let tmp = self.dir.join("sign.log.tmp");
            let mut t = io(&tmp, File::create(&tmp))?;
            io(&tmp, t.write_all(&frame(&payload)))?;
            io(&tmp, t.sync_all())?;
            io(&path, std::fs::rename(&tmp, &path))?;
            io(&self.dir, File::open(&self.dir).and_then(|d| d.sync_all()))?;
            let f = io(&path, OpenOptions::new().append(true).open(&path))?;
            self.sign = BufWriter::new(f);
            self.sign_len = payload.len() as u64 + 8;
            return Ok(());
        }
        io(&path, self.sign.write_all(&frame(&payload)))?;
        self.sign_len += payload.len() as u64 + 8;
        self.dirty_sign = true;
        Ok(())
    }

    /// Whether writes are waiting for [`Store::sync`].
    pub fn is_dirty(&self) -> bool {
        self.dirty_blocks || self.dirty_sign
    }

    /// Makes every write so far durable (flush + fsync).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.dirty_blocks {
            let path = self.dir.join("blocks.log");
            io(&path, self.blocks.flush())?;
            io(&path, self.blocks.get_ref().sync_data())?;
            self.dirty_blocks = false;
        }
        if self.dirty_sign {
            let path = self.dir.join("sign.log");
            io(&path, self.sign.flush())?;
            io(&path, self.sign.get_ref().sync_data())?;
            self.dirty_sign = false;
        }
        Ok(())
    }

    /// Reads a stored block (only durable ones are visible: call after `sync`).
    pub fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        let path = self.dir.join("blocks.log");
        let Some(&(off, len)) = height
            .checked_sub(1)
            .and_then(|i| self.offsets.get(i as usize))
        else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len as usize];
        io(&path, self.blocks_read.read_exact_at(&mut buf, off))?;
        postcard::from_bytes(&buf)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::SignStep;
    use crate::types::{Block, Certificate};

    fn cb(h: u64) -> CommittedBlock {
        CommittedBlock {
            block: Block {
                height: h,
                round: 0,
                epoch: 0,
                prev_hash: Default::default(),
                proposer: Default::default(),
                roster_hash: Default::default(),
                txs: vec![],
                evict: None,
                last_commit: None,
            },
            cert: Certificate {
                epoch: 0,
                height: h,
                round: 0,
                block: Default::default(),
                evict: None,
                sigs: vec![],
            },
        }
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, rec) = Store::open(dir.path()).unwrap();
            assert!(rec.blocks.is_empty());
            for h in 1..=3 {
                s.append_block(&cb(h)).unwrap();
            }
            s.save_sign_state(&SignState {
                height: 4,
                round: 1,
                step: SignStep::Prevote,
                block: None,
                locked: None,
                pol: vec![],
                own: vec![],
            })
            .unwrap();
            s.sync().unwrap();
            assert_eq!(s.block(2).unwrap().unwrap().block.height, 2);
            assert!(s.block(9).unwrap().is_none());
        }
        // A torn write: half a frame at the end.
        let p = dir.path().join("blocks.log");
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (mut s, rec) = Store::open(dir.path()).unwrap();
        assert_eq!(rec.blocks.len(), 3);
        assert_eq!(rec.truncated_bytes, 6);
        assert_eq!(rec.sign_state.unwrap().height, 4);
        s.append_block(&cb(4)).unwrap();
        s.sync().unwrap();
        let (_, rec) = Store::open(dir.path()).unwrap();
        assert_eq!(rec.blocks.len(), 4);
    }

    #[test]
    fn unsynced_writes_are_not_lost_after_sync_but_tail_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::open(dir.path()).unwrap();
        s.append_block(&cb(1)).unwrap();
        assert!(s.is_dirty());
        s.sync().unwrap();
        assert!(!s.is_dirty());
        // Flip a byte inside the record: the CRC catches it and the record is cut.
        let p = dir.path().join("blocks.log");
        let mut data = std::fs::read(&p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&p, data).unwrap();
        let (_, rec) = Store::open(dir.path()).unwrap();
        assert_eq!(rec.blocks.len(), 0);
    }
}
