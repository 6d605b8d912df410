//! The `disk` nemesis's primitives on the simulator (issue 13): damage and
//! failures of a node's simulated disk ([`MemDevice`](rollcall_node_core::store::MemDevice))
//! under its real store.

use super::SimBackend;
use crate::backend::{DiskControl, DiskUnsupported};
use rand::Rng;
use rollcall_node_core::store::{IoFailure, LogFile};
use rollcall_workloads::DiskFault;
use serde_json::{json, Value};

/// The `disk` nemesis's primitives on a node's simulated disk (issue 13); the
/// byte and bit are drawn from the crash stream, so a run replays exactly.
impl DiskControl for SimBackend {
    fn damage_disk(&mut self, node: &str, fault: DiskFault) -> Result<Value, DiskUnsupported> {
        let i = self
            .index(node)
            .map_err(|e| DiskUnsupported(e.to_string()))?;
        let rng = &mut self.crash_rng;
        let store = &mut self.nodes[i].store;
        let file = match fault {
            DiskFault::CorruptSign => LogFile::Sign,
            _ => LogFile::Blocks,
        };
        let len = store.device().len(file);
        if len == 0 {
            return Ok(json!({"file": file.name(), "empty": true}));
        }
        let done = if fault == DiskFault::TruncateBlocks {
            let cut = rng.gen_range(1..=len.min(4096));
            store.device_mut().cut(file, len - cut);
            json!({"file": file.name(), "cut_bytes": cut})
        } else {
            let at = rng.gen_range(0..len);
            let bit = rng.gen_range(0..8u8);
            store.device_mut().flip_bit(file, at, bit);
            json!({"file": file.name(), "offset": at, "bit": bit})
        };
        if let Err(e) = store.reopen() {
            return Err(DiskUnsupported(format!("reopening the store: {e}")));
        }
        Ok(done)
    }

    fn fail_disk(&mut self, node: &str, fault: Option<DiskFault>) -> Result<(), DiskUnsupported> {
        let i = self
            .index(node)
            .map_err(|e| DiskUnsupported(e.to_string()))?;
        let failure = match fault {
            None => None,
            Some(DiskFault::Full) => Some(IoFailure::Full),
            Some(DiskFault::SyncFails) => Some(IoFailure::SyncFails),
            Some(other) => return Err(DiskUnsupported(format!("{other:?} damages files"))),
        };
        self.nodes[i].store.device_mut().set_failure(failure);
        Ok(())
    }
}
