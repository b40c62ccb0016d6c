//! Files the handler keeps: the env file the programs source (`envfile`), the state directory
//! (`state`) and what it holds (the pin of a manual switch, `pin`; the pause, `pause`; the mark
//! of a switch's restart, `switch_mark`), where a running daemon lists itself (`runtime`),
//! what another local user cannot have planted (`trust`), and how many more file descriptors
//! the process may open (`fds`).

pub mod envfile;
pub mod fds;
pub mod pause;
pub mod pin;
pub mod runtime;
pub mod state;
pub mod switch_mark;
mod trust;

pub use envfile::{EnvContents, EnvFile, EnvFileError};
pub use pause::{Pause, PauseState};
pub use state::{StateDir, StateWrite, WriteFailed, mode};
