//! The edges: each module does one kind of I/O, and they stand in five rooms. `http`: fresh
//! HTTP(S) connections and their classified errors, how a TLS peer is verified, the probe of
//! the active region, the standby checks and the throughput gate's download. `supervisor`:
//! restarting the programs through supervisord (its XML-RPC interface or supervisorctl), and
//! whether each start took. `files`: the env file, the state directory and what it holds
//! (pin, pause, the mark of a switch's restart), where a running daemon is listed, what
//! another local user cannot have planted. `etcd`: the fleet's store and its key layout.
//! `process`: the process's own resources (file descriptors left, code pages handed back).

pub mod etcd;
pub mod files;
pub mod http;
pub mod process;
pub mod supervisor;
