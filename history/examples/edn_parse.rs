//! Times `edn::parse_history` on Jepsen EDN files: `cargo run --release -p
//! rollcall-history --example edn_parse -- FILE...` prints events, operations and
//! milliseconds per file (the reader must keep up with Jepsen-sized histories).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)?;
        let start = Instant::now();
        let h = rollcall_history::edn::parse_history(&text)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{path}: {} bytes, {} events, {} ops in {ms:.1} ms ({:.1} MB/s)",
            text.len(),
            h.len(),
            h.ops().len(),
            text.len() as f64 / 1e6 / (ms / 1000.0)
        );
    }
    Ok(())
}
