//! HTTP(S) and what it rests on: fresh connections phase by phase (`net`) and why one failed
//! (`error`), how a TLS peer is verified (`tls`: system roots, a CA, or the exact certificate
//! a tunnel presents; `tls_name`, `x509`), and their three users: the probe of the active
//! region (`probe`), the standby checks (`checks`) and the throughput gate's download
//! (`throughput`).

pub mod checks;
mod error;
mod net;
pub mod probe;
#[cfg(test)]
mod test_http;
pub mod throughput;
mod tls;
mod tls_name;
mod x509;

pub use checks::{CheckReport, Checks};
pub use error::{ErrorKind, ProbeError};
pub use net::{Connector, TlsSettings, connect_tcp};
pub use probe::{HttpProbe, Phases, Probe, ProbeReport, is_loopback};
pub use throughput::Throughput;
pub use tls::client_config;
