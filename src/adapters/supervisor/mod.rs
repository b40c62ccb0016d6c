//! supervisord: restarting the application's programs (`restart`), by the way `restart_path`
//! chooses: supervisorctl (`supervisorctl`) or supervisord's XML-RPC interface (`rpc`, spoken
//! with `xmlrpc`, found through supervisorctl's own config, `conf`); whether a start took
//! (`started`, `program_state`), how a call failed (`call_error`), what a restart tells as it
//! goes (`progress`), and whether a manual switch's restart can reach supervisord before it
//! writes anything (`preflight`).

mod action;
mod call_error;
mod conf;
pub mod preflight;
mod program_state;
mod progress;
pub mod restart;
pub mod restart_path;
mod rpc;
mod started;
mod supervisorctl;
mod xmlrpc;

pub use action::Action;
pub use call_error::CallError;
pub use progress::{Next, Progress, Tell};
pub use restart::{Restart, RestartError};
pub use restart_path::Restarter;

/// The parsers of what supervisord and its config say, driven by the fuzz checks.
pub use conf::parse_ini;
pub use xmlrpc::{Response, decode_response};
