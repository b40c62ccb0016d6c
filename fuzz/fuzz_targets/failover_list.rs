//! The fuzz target for fuzz/checks/failover_list.rs, which `cargo test` also runs on the seeds and
//! the saved crashes (tests/suite/fuzz_corpus.rs).
#![no_main]

#[path = "../checks/failover_list.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
