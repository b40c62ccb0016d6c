//! Files the handler keeps: the env file the programs source (`envfile`), the state directory
//! (`state`) and what it holds (the pin of a manual switch, `pin`; the pause, `pause`; the mark
//! of a switch's restart, `switch_mark`), where a running daemon lists itself (`runtime`),
//! and what another local user cannot have planted (`trust`).

pub mod envfile;
pub mod pause;
pub mod pin;
pub mod runtime;
pub mod state;
pub mod switch_mark;
mod trust;

pub use envfile::{EnvContents, EnvFile, EnvFileError, EnvLock};
pub use pause::{Pause, PauseState};
pub use state::{StateDir, StateWrite, WriteFailed, mode};
pub use trust::runs_this_binary;
