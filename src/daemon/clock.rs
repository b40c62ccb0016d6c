//! The kernel's time. The kernel takes `std::time::Instant`; the daemon reads it from tokio's
//! clock, so a test that pauses and advances tokio's clock moves the kernel's time with it.

use std::time::Instant;

/// Now, on tokio's clock, as the kernel takes it. Every `now` handed to the kernel is read
/// here: a `std::time::Instant::now()` would not follow a paused test clock.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
