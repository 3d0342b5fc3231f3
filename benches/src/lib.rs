//! What the benchmark binaries share (the binaries themselves are in `src/bin/`, the criterion
//! benches in `hot_path.rs`).

pub mod synthetic;
