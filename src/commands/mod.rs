//! The commands an operator runs, one module each: `switch`, `status`, `check`, `config`,
//! `pause`, `resume`, `replay` (a folder of its own), and the `demo`. Each returns the process exit code; their output is for
//! people (or JSON where asked).

mod check;
mod config;
pub mod demo;
pub mod discover;
mod fleet;
mod pause;
pub mod replay;
pub mod ship;
pub mod startup;
mod status;
mod switch;

pub use check::check;
pub use config::{print_config, timing_budget};
pub use fleet::{pause_fleet, status_fleet, switch_fleet};
pub use pause::{pause, resume};
pub use status::status;
pub use switch::{switch, unpin};
