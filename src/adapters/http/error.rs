//! Why a network call failed, as the logs, the metrics and the policy need it: a kind
//! (timeout, refused, reset, tls, dns, status...) and a detail for people.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Status,
    Timeout,
    Refused,
    /// A connection refused by a loopback address: the local tunnel is down, not the cloud.
    TunnelDown,
    /// The local tunnel presents a certificate the probe cannot verify (a loopback probe URL
    /// without `{cloud}`): this host's configuration, not the cloud.
    TunnelMisconfigured,
    Reset,
    Tls,
    Dns,
    Protocol,
    Io,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Status,
        ErrorKind::Timeout,
        ErrorKind::Refused,
        ErrorKind::TunnelDown,
        ErrorKind::TunnelMisconfigured,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::Dns,
        ErrorKind::Protocol,
        ErrorKind::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Status => "status",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::TunnelDown => "tunnel_down",
            ErrorKind::TunnelMisconfigured => "tunnel_misconfigured",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Dns => "dns",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
        }
    }
}

impl ErrorKind {
    /// Whether a probe failure of this kind is the host's own fault, not the region's: the
    /// local tunnel down, or a TLS failure on a local probe (a loopback URL whose TLS name
    /// does not follow the region's cloud: the certificate is the tunnel's setup). In a
    /// fleet, such a host abstains.
    pub fn is_local_fault(self, probe_is_local: bool) -> bool {
        match self {
            ErrorKind::TunnelDown | ErrorKind::TunnelMisconfigured => true,
            ErrorKind::Tls => probe_is_local,
            _ => false,
        }
    }

    /// Whether a probe failure of this kind is what a restart of the tunnel gives: the
    /// connection refused or reset. A status, a timeout or a TLS failure is an answer (or a
    /// silence) of the region's side, whatever restarts meanwhile.
    pub fn is_lost_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::TunnelDown | ErrorKind::Refused | ErrorKind::Reset
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed: its kind, and a detail for people.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{kind}: {detail}")]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub detail: String,
    /// The HTTP status, when the kind is `Status`.
    pub http_status: Option<u16>,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        ProbeError {
            kind,
            detail: detail.into(),
            http_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_faults_are_the_tunnel_and_tls_on_a_local_probe() {
        for kind in ErrorKind::ALL {
            let expected = match kind {
                ErrorKind::TunnelDown | ErrorKind::TunnelMisconfigured => (true, true),
                ErrorKind::Tls => (true, false),
                _ => (false, false),
            };
            let got = (kind.is_local_fault(true), kind.is_local_fault(false));
            assert_eq!(got, expected, "{kind}");
        }
    }
}
