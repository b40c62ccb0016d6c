//! The edges: each module does one kind of I/O. Fresh HTTP(S) connections and their
//! classified errors, how their TLS peers are verified (system roots, a CA, the exact
//! certificate a tunnel presents), the probe of the active region, the standby checks, the
//! throughput gate's download, the env file, supervisord (through its XML-RPC interface or
//! supervisorctl), and the state directory (restart marker, pin, pause, the mark of a switch's
//! restart); the X.509 expiry of
//! what a TLS server showed; what another local user cannot have planted (`trust`).

pub mod etcd;
pub mod files;
pub mod http;
pub mod supervisor;

// The paths before the rooms, still named by files that have not moved to the rooms' names
// (daemon/act, intel, recall, memory; report/services; commands/switch; main.rs): each goes
// when the last of its importers names the room instead.
pub use files::{envfile, pin, state, switch_mark};
pub use http::{checks, probe, throughput};
pub use supervisor::{preflight, restart, restart_path};
