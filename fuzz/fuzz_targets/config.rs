//! Config loading and checking: one input is a config set (one file, or
//! several joined by `\n#file\n`), loaded in memory, checked, rendered and,
//! when valid, exported and read back. See `fuzz/harness.rs` for the
//! invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
