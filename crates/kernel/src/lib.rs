//! Pure decisions: the regions and their order, one target's health, the standby view, flap
//! damping, the failover policy, the fleet's quorum rule, and whether an interrupted restart is
//! made again. Nothing here does I/O, reads a clock or knows the config file: `now` is handed
//! in, and the settings are the kernel's own small structs. It is a crate of its own whose
//! manifest lists no I/O crate, so the compiler keeps it pure; failover-handler uses it as
//! `failover_handler::kernel`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod damping;
pub mod decision;
pub mod health;
pub mod policy;
pub mod protocol;
pub mod quorum;
pub mod region;
pub mod resume;
pub mod rules;
pub mod standby;
