//! The fuzz target for fuzz/checks/env_file.rs, which `cargo test` also runs on the seeds and
//! the saved crashes (tests/suite/fuzz_corpus.rs).
#![no_main]

#[path = "../checks/env_file.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
