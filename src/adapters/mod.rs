//! The edges: each module does one kind of I/O. Fresh HTTP(S) connections and their
//! classified errors, how their TLS peers are verified (system roots, a CA, the exact
//! certificate a tunnel presents), the probe of the active region, the standby checks, the
//! throughput gate's download, the env file, supervisord (through its XML-RPC interface or
//! supervisorctl), and the state directory (restart marker, pin, pause, the mark of a switch's
//! restart); the X.509 expiry of
//! what a TLS server showed; what another local user cannot have planted (`trust`).

pub mod action;
pub mod call_error;
pub mod checks;
pub mod code_pages;
pub mod envfile;
pub mod error;
pub mod etcd;
pub mod fds;
pub mod fleet_store;
pub mod net;
pub mod pause;
pub mod pin;
pub mod preflight;
pub mod probe;
pub mod program_state;
pub mod progress;
pub mod restart;
pub mod restart_path;
pub mod runtime;
pub mod started;
pub mod state;
pub mod supervisor_conf;
pub mod supervisor_rpc;
pub mod supervisorctl;
pub mod switch_mark;
#[cfg(test)]
mod test_http;
pub mod throughput;
pub mod tls;
mod tls_name;
pub mod trust;
pub mod x509;
pub mod xmlrpc;
