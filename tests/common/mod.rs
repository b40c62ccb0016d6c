//! The integration tests' support module (`tests/suite/support/`) under the path the bench
//! includes it by (`benches/failover.rs`), so the bench and the tests share one harness.

#[allow(dead_code, unused_imports)]
#[path = "../suite/support/mod.rs"]
mod support;

#[allow(unused_imports)]
pub use support::*;
