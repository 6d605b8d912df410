//! Durable storage over a [`Device`]: an append-only block log and a signing-state
//! log, both framed with a length and a CRC so a torn tail after a crash is detected
//! and cut off (protocol.md §6).
//!
//! Durability is a type: the core hands back an [`Output`] whose `persist` writes
//! must be durable before any of its `effects` happen, and [`Store::commit`] is the
//! only way to get the effects out of it: it writes, syncs once, and only then
//! returns them. The runtime (files + fsync) and the simulator ([`MemDevice`]) run
//! this same code.

use crate::consensus::{Effect, Output, Persist, SignState};
use crate::types::CommittedBlock;
use std::io;

mod mem;

pub use mem::{IoFailure, MemDevice, LIE_WINDOW_NS};

/// The store's files; a [`Device`] maps them to whatever it stores bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogFile {
    /// `blocks.log`: committed blocks with certificates, in height order.
    Blocks,
    /// `sign.log`: signing states, the last one in force.
    Sign,
}

impl LogFile {
    /// Both files.
    pub const ALL: [LogFile; 2] = [LogFile::Blocks, LogFile::Sign];

    /// The file name on a real disk (unchanged since the first store format).
    pub fn name(self) -> &'static str {
        match self {
            LogFile::Blocks => "blocks.log",
            LogFile::Sign => "sign.log",
        }
    }
}

/// Where the store's bytes live: per named file, append, sync, read back, cut.
///
/// Only what [`Device::sync`] (or [`Device::truncate`] / [`Device::replace`], which
/// are durable on return) acknowledged must survive a crash; appended but unsynced
/// bytes may be lost (the store's frames detect a torn tail).
pub trait Device {
    /// The whole file (empty if it does not exist yet).
    fn read(&self, file: LogFile) -> io::Result<Vec<u8>>;
    /// Fills `buf` from `offset`; an error if the file is shorter.
    fn read_at(&self, file: LogFile, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Appends at the end of the file (durable only after [`Device::sync`]).
    fn append(&mut self, file: LogFile, data: &[u8]) -> io::Result<()>;
    /// Makes every append so far durable (fsync).
    fn sync(&mut self, file: LogFile) -> io::Result<()>;
    /// Cuts the file to `len` bytes, durably.
    fn truncate(&mut self, file: LogFile, len: u64) -> io::Result<()>;
    /// Atomically replaces the file's contents, durably: a crash leaves either the
    /// old or the new contents (a real disk writes a temporary file, syncs it and
    /// renames it over the old one).
    fn replace(&mut self, file: LogFile, data: &[u8]) -> io::Result<()>;
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device failed.
    #[error("{file}: {source}")]
    Io {
        /// File.
        file: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// A record that does not decode.
    #[error("{0}: corrupt record")]
    Corrupt(&'static str),
}

/// Largest record accepted when reading back.
const MAX_RECORD: u32 = 256 << 20;
/// The signing log is rewritten once it grows past this.
const SIGN_LOG_ROTATE: u64 = 1 << 20;
/// Bytes of a frame header: length and CRC32, little-endian.
const HEADER: u64 = 8;

fn io<T>(file: LogFile, r: io::Result<T>) -> Result<T, StoreError> {
    r.map_err(|source| StoreError::Io {
        file: file.name(),
        source,
    })
}

/// Appends one frame: length, CRC32 of the payload, payload.
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

/// How a log's good prefix ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// At the end of the file.
    Clean,
    /// In a frame cut short: what a crash leaves of an unsynced append.
    Torn,
    /// In a whole frame whose CRC or length is wrong: corruption, not a crash.
    Corrupt,
}

/// Reads whole frames; returns (payload offset, length) of each good frame, the
/// offset where the good prefix ends, and how it ends.
fn scan(data: &[u8]) -> (Vec<(u64, u32)>, u64, Tail) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let tail = loop {
        if pos == data.len() {
            break Tail::Clean;
        }
        if pos + HEADER as usize > data.len() {
            break Tail::Torn;
        }
        let len = le32(&data[pos..pos + 4]);
        let crc = le32(&data[pos + 4..pos + 8]);
        let start = pos + HEADER as usize;
        if len > MAX_RECORD {
            break Tail::Corrupt;
        }
        let end = start + len as usize;
        if end > data.len() {
            // Cut short by a crash, unless the bytes that are there are the whole
            // payload its CRC names: then only the length field is wrong (a flipped
            // bit), and trusting the frame before as "the last synced state" would
            // let a node sign again what it signed in this one (issue 16's overlap
            // finding: a double sign after a flip in sign.log's last length).
            if crc32fast::hash(&data[start..]) == crc {
                break Tail::Corrupt;
            }
            break Tail::Torn;
        }
        if crc32fast::hash(&data[start..end]) != crc {
            break Tail::Corrupt;
        }
        out.push((start as u64, len));
        pos = end;
    };
    (out, pos as u64, tail)
}

/// What the store found wrong with its own files (issue 13; the node's `/status`
/// `storage` field): the node acts on it rather than serving bad data. Counts are
/// totals since the store was opened; the floor and the fatal reason are those of
/// the last opening.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// Corrupt frames found (CRC or length wrong in a whole frame), or reads that
    /// did not verify.
    pub corrupt: u64,
    /// Blocks dropped from the log from the first corrupt one on: the node
    /// fetches them again from peers through block sync.
    pub blocks_dropped_bytes: u64,
    /// The signing log was corrupt: the last signing state cannot be trusted, so
    /// the node must not sign at or below this height (DESIGN.md "Storage
    /// faults"): its chain height when opened plus one, the highest it can have
    /// signed at, since a block is synced before the signing state of the next
    /// height.
    pub sign_floor: Option<u64>,
    /// Why the store cannot be used at all (the node stops and says so).
    pub fatal: Option<String>,
}

/// An output whose writes are appended but not yet synced: its effects come out
/// only through [`Store::sync`].
#[must_use = "the effects leave only through Store::sync"]
pub struct Written {
    effects: Vec<Effect>,
    dirty: Vec<LogFile>,
}

/// The node's store over a device.
pub struct Store<D: Device> {
    dev: D,
    /// (payload offset, length) of each stored block, by height - 1.
    offsets: Vec<(u64, u32)>,
    /// End of `blocks.log`.
    end: u64,
    /// Length of `sign.log`.
    sign_len: u64,
    /// The last signing state stored.
    sign_state: Option<SignState>,
    /// Torn-tail bytes cut off when opening.
    truncated: u64,
    /// Test-only: `false` skips the sync in [`Store::commit`].
    sync: bool,
    /// Corruption found (never served: [`Store::block`] verifies every read).
    damage: Damage,
}

impl<D: Device> Store<D> {
    /// Opens the store on `dev`, cutting off a torn tail of either log. Blocks are
    /// checked only by their frames here; [`crate::consensus::Core::recover`]
    /// decodes and links them.
    pub fn open(dev: D) -> Result<Self, StoreError> {
        let mut s = Store {
            dev,
            offsets: Vec::new(),
            end: 0,
            sign_len: 0,
            sign_state: None,
            truncated: 0,
            sync: true,
            damage: Damage::default(),
        };
        s.load()?;
        Ok(s)
    }

    /// Forgets what this process knew and reads the device again, as a restarted
    /// process does (the simulator calls it after crashing the device).
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.load()
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let dev = &mut self.dev;
        let mut truncated = 0;
        let mut damage = Damage::default();
        let data = io(LogFile::Blocks, dev.read(LogFile::Blocks))?;
        let (offsets, end, tail) = scan(&data);
        let cut = data.len() as u64 - end;
        if tail == Tail::Corrupt {
            // Blocks are certified and replicated: drop the bad one and what
            // follows, and fetch them again from peers (never serve or replay them).
            tracing::error!(
                at = end,
                bytes = cut,
                "blocks.log: corrupt frame, dropping the rest"
            );
            damage.corrupt += 1;
            damage.blocks_dropped_bytes = cut;
        } else if cut > 0 {
            tracing::warn!(bytes = cut, "cutting torn tail of blocks.log");
            truncated += cut;
        }
        if cut > 0 {
            io(LogFile::Blocks, dev.truncate(LogFile::Blocks, end))?;
        }
        drop(data);
        let sdata = io(LogFile::Sign, dev.read(LogFile::Sign))?;
        let (sframes, sign_len, stail) = scan(&sdata);
        let decoded = sframes.last().map(|(off, len)| {
            postcard::from_bytes::<SignState>(&sdata[*off as usize..(*off + *len as u64) as usize])
        });
        let sign_state = match decoded {
            Some(Ok(st)) if stail != Tail::Corrupt => Some(st),
            None if stail != Tail::Corrupt => None,
            _ => {
                // What this node signed last is unknown: it waits (Damage::sign_floor).
                let floor = offsets.len() as u64 + 1;
                tracing::error!(
                    floor,
                    "sign.log: corrupt, not signing at or below height {floor}"
                );
                damage.corrupt += 1;
                damage.sign_floor = Some(floor);
                if damage.blocks_dropped_bytes > 0 {
                    damage.fatal = Some(
                        "both blocks.log and sign.log are corrupt: the highest height this \
                         node may have signed at is unknown"
                            .into(),
                    );
                }
                None
            }
        };
        if (sdata.len() as u64) > sign_len {
            truncated += sdata.len() as u64 - sign_len;
            io(LogFile::Sign, dev.truncate(LogFile::Sign, sign_len))?;
        }
        self.offsets = offsets;
        self.end = end;
        self.sign_len = sign_len;
        self.sign_state = sign_state;
        self.truncated = truncated;
        // Counts add up over the reopenings of this store (a simulated node's store
        // outlives its crashes; a real node counts since its process started).
        self.damage.corrupt += damage.corrupt;
        self.damage.blocks_dropped_bytes += damage.blocks_dropped_bytes;
        self.damage.sign_floor = damage.sign_floor;
        self.damage.fatal = damage.fatal;
        self.persist_floor()
    }

    /// Writes a floor found at opening to the sign log, synced. The corrupt frame is
    /// cut off; without a durable trace of the floor the next restart would trust the
    /// frame before it and could sign again what the lost frame recorded (a double
    /// sign the overlap explorer found after a second restart, issue 16).
    fn persist_floor(&mut self) -> Result<(), StoreError> {
        if let (Some(floor), None) = (self.damage.sign_floor, &self.damage.fatal) {
            self.write_sign_state(SignState::floor(floor))?;
            io(LogFile::Sign, self.dev.sync(LogFile::Sign))?;
        }
        Ok(())
    }

    /// What the store found wrong with its files when opened, and since.
    pub fn damage(&self) -> &Damage {
        &self.damage
    }

    /// Last stored height.
    pub fn height(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The last signing state stored (what a restarted node must honour, §6).
    pub fn sign_state(&self) -> Option<&SignState> {
        self.sign_state.as_ref()
    }

    /// Bytes of torn tail cut off when the store was opened.
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated
    }

    /// The device, for inspection.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, e.g. to set a simulated clock.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Gives the device back (the simulator crashes it and reopens the store).
    pub fn into_device(self) -> D {
        self.dev
    }

    /// Test-only broken environment: `false` removes the sync from
    /// [`Store::commit`], so acknowledged writes are not durable. A test shows the
    /// harness catches it; nothing else may call this.
    #[doc(hidden)]
    pub fn set_sync(&mut self, on: bool) {
        self.sync = on;
    }

    /// Makes `out.persist` durable (written, then one sync per written file) and
    /// only then hands back the effects, which may now leave the node (§6).
    pub fn commit(&mut self, out: Output) -> Result<Vec<Effect>, StoreError> {
        let w = self.write(out)?;
        self.sync(w)
    }

    /// The first half of [`Store::commit`]: appends `out.persist` without syncing.
    /// The effects stay inside the returned [`Written`] until [`Store::sync`]; the
    /// simulator crashes a node between the two to test that order.
    pub fn write(&mut self, out: Output) -> Result<Written, StoreError> {
        let Output { persist, effects } = out;
        let mut dirty = Vec::new();
        let mut blocks = Vec::new();
        let mut sign = None;
        for p in persist {
            match p {
                Persist::Block(cb) => self.encode_block(&cb, &mut blocks)?,
                Persist::SignState(s) => sign = Some(*s),
            }
        }
        if !blocks.is_empty() {
            io(LogFile::Blocks, self.dev.append(LogFile::Blocks, &blocks))?;
            dirty.push(LogFile::Blocks);
        }
        if let Some(s) = sign {
            if self.write_sign_state(s)? {
                dirty.push(LogFile::Sign);
            }
        }
        Ok(Written { effects, dirty })
    }

    /// The second half of [`Store::commit`]: syncs what `w` wrote, then hands back
    /// its effects. A failed sync is final: the caller must stop, never retry and
    /// carry on (the page cache may have dropped the dirty pages: "fsyncgate").
    pub fn sync(&mut self, w: Written) -> Result<Vec<Effect>, StoreError> {
        self.sync_files(&w.dirty)?;
        Ok(w.effects)
    }

    /// Syncs `files` (skipped by the test-only [`Store::set_sync`] switch).
    pub fn sync_files(&mut self, files: &[LogFile]) -> Result<(), StoreError> {
        if self.sync {
            for &f in files {
                io(f, self.dev.sync(f))?;
            }
        }
        Ok(())
    }

    /// Frames a block into `buf` if it extends the log (a block at a stored height
    /// is already there, from before a restart).
    fn encode_block(&mut self, cb: &CommittedBlock, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        if cb.block.height != self.height() + 1 {
            return Ok(());
        }
        let name = LogFile::Blocks.name();
        let payload = postcard::to_allocvec(cb).map_err(|_| StoreError::Corrupt(name))?;
        debug_assert!(
            postcard::from_bytes::<CommittedBlock>(&payload).is_ok_and(|d| d == *cb),
            "the store decodes the block it just encoded"
        );
        frame(buf, &payload);
        self.offsets.push((self.end + HEADER, payload.len() as u32));
        self.end += payload.len() as u64 + HEADER;
        Ok(())
    }

    /// Only the newest signing state of one output matters: a crash either keeps
    /// it or a state older than the whole output, whose effects never happened.
    /// Returns whether the log needs a sync (a rotation is durable on return).
    fn write_sign_state(&mut self, s: SignState) -> Result<bool, StoreError> {
        // Paired with the core's check when it signs.
        debug_assert!(
            self.sign_state
                .as_ref()
                .is_none_or(|o| { (o.height, o.round, o.step) <= (s.height, s.round, s.step) }),
            "the stored signing state only moves forward"
        );
        let file = LogFile::Sign;
        let payload = postcard::to_allocvec(&s).map_err(|_| StoreError::Corrupt(file.name()))?;
        debug_assert!(
            postcard::from_bytes::<SignState>(&payload).is_ok_and(|d| d == s),
            "the store decodes the signing state it just encoded"
        );
        let mut f = Vec::with_capacity(payload.len() + HEADER as usize);
        frame(&mut f, &payload);
        if self.sign_len > SIGN_LOG_ROTATE {
            // Rewrite the log with just the latest state, atomically.
            io(file, self.dev.replace(file, &f))?;
            self.sign_len = f.len() as u64;
            self.sign_state = Some(s);
            return Ok(false);
        }
        io(file, self.dev.append(file, &f))?;
        self.sign_len += f.len() as u64;
        self.sign_state = Some(s);
        Ok(true)
    }

    /// A stored block (everything [`Store::commit`] returned from is visible).
    pub fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        let file = LogFile::Blocks;
        let Some(&(off, len)) = height
            .checked_sub(1)
            .and_then(|i| self.offsets.get(i as usize))
        else {
            return Ok(None);
        };
        // Read the frame header too and verify the CRC: bytes that rotted after
        // the store was opened are never returned as data.
        let mut buf = vec![0u8; len as usize + HEADER as usize];
        io(file, self.dev.read_at(file, off - HEADER, &mut buf))?;
        let (head, payload) = buf.split_at(HEADER as usize);
        if le32(&head[..4]) != len || le32(&head[4..]) != crc32fast::hash(payload) {
            return Err(StoreError::Corrupt(file.name()));
        }
        postcard::from_bytes(payload)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(file.name()))
    }

    /// Stored blocks `from..=to` (heights start at 1), stopping at the first
    /// missing one.
    pub fn blocks(&self, from: u64, to: u64) -> Result<Vec<CommittedBlock>, StoreError> {
        let mut out = Vec::new();
        for h in from.max(1)..=to.min(self.height()) {
            match self.block(h)? {
                Some(cb) => out.push(cb),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{SignStep, Timeout, TimeoutKind};

    fn cb(h: u64) -> CommittedBlock {
        CommittedBlock::for_test(h)
    }

    fn sign(height: u64) -> SignState {
        SignState {
            height,
            round: 0,
            step: SignStep::Precommit,
            block: None,
            locked: None,
            pol: vec![],
            own: vec![],
        }
    }

    fn output(h: u64) -> Output {
        Output {
            persist: vec![
                Persist::Block(Box::new(cb(h))),
                Persist::SignState(Box::new(sign(h + 1))),
            ],
            effects: vec![Effect::Schedule {
                timeout: Timeout {
                    kind: TimeoutKind::Tick,
                    height: 0,
                    round: 0,
                },
                after_ms: h,
            }],
        }
    }

    #[test]
    fn commit_makes_the_writes_durable_before_returning_the_effects() {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        for h in 1..=3 {
            let fx = s.commit(output(h)).unwrap();
            assert_eq!(fx.len(), 1);
            // By the time the effects are handed back, a crash keeps the writes.
            for f in LogFile::ALL {
                assert_eq!(s.device().synced_len(f), s.device().len(f));
            }
        }
        // A block already stored (a replayed height) is not written twice.
        let again = Output {
            persist: vec![Persist::Block(Box::new(cb(2)))],
            effects: vec![],
        };
        let _ = s.commit(again).unwrap();
        s.device_mut().crash(0);
        s.reopen().unwrap();
        assert_eq!(s.height(), 3);
        assert_eq!(s.blocks(1, 9).unwrap(), (1..=3).map(cb).collect::<Vec<_>>());
        assert_eq!(s.sign_state(), Some(&sign(4)));
    }

    /// The paired assertion on the store side: a signing state older than the
    /// stored one (a core that forgot what it signed) stops a debug build.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "the stored signing state only moves forward")]
    fn a_signing_state_going_back_trips_the_debug_assertion() {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        let _ = s.commit(output(3)).unwrap();
        let back = Output {
            persist: vec![Persist::SignState(Box::new(sign(2)))],
            effects: vec![],
        };
        let _ = s.commit(back);
    }

    #[test]
    fn without_its_sync_a_crash_loses_acknowledged_writes() {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        let _ = s.commit(output(1)).unwrap();
        s.set_sync(false);
        let _ = s.commit(output(2)).unwrap();
        assert_eq!(s.height(), 2);
        s.device_mut().crash(0);
        s.reopen().unwrap();
        assert_eq!(s.height(), 1, "block 2 was acknowledged but never synced");
        assert_eq!(s.sign_state(), Some(&sign(2)));
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_log_grows_on() {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        let _ = s.commit(output(1)).unwrap();
        // Half a frame appended and synced: what a torn write leaves.
        s.device_mut()
            .append(LogFile::Blocks, &[50, 0, 0, 0, 1, 2])
            .unwrap();
        s.device_mut().sync(LogFile::Blocks).unwrap();
        s.reopen().unwrap();
        assert_eq!(s.truncated_bytes(), 6);
        assert_eq!(s.height(), 1);
        let _ = s.commit(output(2)).unwrap();
        s.reopen().unwrap();
        assert_eq!(s.blocks(1, 2).unwrap(), vec![cb(1), cb(2)]);
    }

    #[test]
    fn the_sign_log_rotates_and_keeps_the_latest_state() {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        let big = SignState {
            own: vec![],
            pol: vec![],
            locked: Some((0, cb(1).block)),
            ..sign(1)
        };
        let mut h = 0;
        while s.device().len(LogFile::Sign) <= SIGN_LOG_ROTATE {
            h += 1;
            let out = Output {
                persist: vec![Persist::SignState(Box::new(SignState {
                    height: h,
                    ..big.clone()
                }))],
                effects: vec![],
            };
            let _ = s.commit(out).unwrap();
        }
        let out = Output {
            persist: vec![Persist::SignState(Box::new(sign(h + 1)))],
            effects: vec![],
        };
        let _ = s.commit(out).unwrap();
        assert!(s.device().len(LogFile::Sign) < 1024, "rewritten");
        s.device_mut().crash(0);
        s.reopen().unwrap();
        assert_eq!(s.sign_state(), Some(&sign(h + 1)));
    }

    /// A store with blocks 1..=3 and signing states, all synced; returns it and
    /// the payload offset of each block.
    fn three() -> (Store<MemDevice>, Vec<u64>) {
        let mut s = Store::open(MemDevice::new(false)).unwrap();
        for h in 1..=3 {
            let _ = s.commit(output(h)).unwrap();
        }
        let offs = s.offsets.iter().map(|o| o.0).collect();
        (s, offs)
    }

    #[test]
    fn a_corrupt_block_in_the_middle_is_detected_and_never_returned() {
        let (mut s, offs) = three();
        assert!(s.device_mut().flip_bit(LogFile::Blocks, offs[1] + 3, 2));
        s.reopen().unwrap();
        assert_eq!(s.damage().corrupt, 1);
        assert!(s.damage().blocks_dropped_bytes > 0);
        assert_eq!(s.damage().sign_floor, None, "the signing log is intact");
        // Blocks 2 and 3 are gone (fetched again from peers), block 1 is intact.
        assert_eq!(s.height(), 1);
        assert_eq!(s.blocks(1, 3).unwrap(), vec![cb(1)]);
        // The log grows on from the good prefix (block 2 fetched again).
        let again = Output {
            persist: vec![Persist::Block(Box::new(cb(2)))],
            effects: vec![],
        };
        let _ = s.commit(again).unwrap();
        s.reopen().unwrap();
        assert_eq!(s.blocks(1, 3).unwrap(), vec![cb(1), cb(2)]);
    }

    #[test]
    fn a_corrupt_length_or_last_block_is_corruption_not_a_torn_tail() {
        let (mut s, offs) = three();
        // The length field of block 3's header: a huge length.
        assert!(s
            .device_mut()
            .flip_bit(LogFile::Blocks, offs[2] - HEADER + 3, 7));
        s.reopen().unwrap();
        assert_eq!((s.damage().corrupt, s.height()), (1, 2));
        assert_eq!(s.truncated_bytes(), 0, "not counted as a torn tail");
        let (mut s, offs) = three();
        // The CRC of block 3.
        assert!(s.device_mut().flip_bit(LogFile::Blocks, offs[2] - 2, 0));
        s.reopen().unwrap();
        assert_eq!((s.damage().corrupt, s.height()), (1, 2));
    }

    #[test]
    fn a_last_frame_whose_length_grew_is_corruption_even_past_the_end() {
        // The length of sign.log's last frame made larger by one flipped bit: the
        // frame now seems to run past the file, like a torn append, but its bytes
        // are whole (their CRC matches), so the state is damaged, not torn.
        let (mut s, _) = three();
        let data = s.device().read(LogFile::Sign).unwrap();
        let (frames, _, _) = scan(&data);
        let (last, len) = *frames.last().unwrap();
        let high = (len as u64).next_power_of_two().trailing_zeros() as u8 + 1;
        assert!(s.device_mut().flip_bit(LogFile::Sign, last - HEADER, high));
        s.reopen().unwrap();
        assert!(
            s.sign_state().is_some_and(SignState::is_floor),
            "the frame before is not trusted"
        );
        assert!(s.damage().sign_floor.is_some());
        assert_eq!(s.damage().corrupt, 1);
        // A real torn append (a prefix of a frame) is still a torn tail.
        let (mut s, _) = three();
        let n = s.device().len(LogFile::Sign);
        s.device_mut().truncate(LogFile::Sign, n - 3).unwrap();
        s.reopen().unwrap();
        assert!(s.sign_state().is_some());
        assert_eq!(s.damage(), &Damage::default());
    }

    #[test]
    fn a_block_that_rots_after_opening_is_never_returned() {
        let (mut s, offs) = three();
        assert!(s.device_mut().flip_bit(LogFile::Blocks, offs[0] + 1, 4));
        assert!(matches!(s.block(1), Err(StoreError::Corrupt(_))));
        assert!(s.blocks(1, 3).is_err());
        assert_eq!(s.block(2).unwrap(), Some(cb(2)));
    }

    #[test]
    fn a_corrupt_signing_state_is_not_trusted_and_sets_the_floor() {
        let (mut s, _) = three();
        let last = s.device().len(LogFile::Sign) - 1;
        assert!(s.device_mut().flip_bit(LogFile::Sign, last, 1));
        s.reopen().unwrap();
        assert_eq!(
            s.sign_state(),
            Some(&SignState::floor(4)),
            "an older state is not used either: the floor takes its place"
        );
        assert_eq!(
            s.damage().sign_floor,
            Some(4),
            "chain at 3: may have signed at 4"
        );
        assert_eq!(s.damage().fatal, None);
        // The floor outlives the next restart, when nothing looks corrupt any more.
        s.reopen().unwrap();
        assert_eq!(s.damage().sign_floor, None);
        assert_eq!(s.sign_state(), Some(&SignState::floor(4)));
    }

    #[test]
    fn both_logs_corrupt_is_fatal() {
        let (mut s, offs) = three();
        assert!(s.device_mut().flip_bit(LogFile::Blocks, offs[2] + 1, 1));
        let last = s.device().len(LogFile::Sign) - 1;
        assert!(s.device_mut().flip_bit(LogFile::Sign, last, 1));
        s.reopen().unwrap();
        assert!(s.damage().fatal.is_some());
    }

    #[test]
    fn a_truncated_tail_is_a_torn_tail_not_corruption() {
        let (mut s, _) = three();
        let len = s.device().len(LogFile::Blocks);
        s.device_mut().truncate(LogFile::Blocks, len - 5).unwrap();
        s.reopen().unwrap();
        assert_eq!(s.damage(), &Damage::default());
        assert_eq!(s.height(), 2);
        assert!(s.truncated_bytes() > 0);
    }
}
