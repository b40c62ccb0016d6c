//! Faults of this host that stay on this host, shown beside the live state: the last restart
//! left a program not RUNNING (`restart_error`), and the local tunnel presents a certificate
//! the handler cannot verify (`tunnel_misconfigured`). Each is a gauge, a field of
//! [`Snapshot`], a line of `status` and a banner of the page.

use std::fmt::Write as _;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use quick_xml::escape::escape;

use crate::report::snapshot::Snapshot;

/// The gauges: 1 while the fault lasts, else 0.
#[derive(Clone, Default)]
pub struct LocalFaults {
    pub restart_failed: Gauge,
    pub tunnel_misconfigured: Gauge,
}

impl LocalFaults {
    pub fn register(r: &mut Registry) -> Self {
        let faults = LocalFaults::default();
        r.register(
            "failover_handler_restart_failed",
            "1 while the last restart left a program not RUNNING (restart_gave_up), else 0",
            faults.restart_failed.clone(),
        );
        r.register(
            "failover_handler_tunnel_misconfigured",
            "1 while the local tunnel presents a certificate the probe cannot verify, else 0",
            faults.tunnel_misconfigured.clone(),
        );
        faults
    }
}

/// The lines `status` adds under the env file's.
pub fn status_lines(s: &Snapshot) -> String {
    let mut out = String::new();
    if let Some(e) = &s.restart_error {
        let _ = writeln!(out, "Restart:       FAILED: {e}");
    }
    if let Some(e) = &s.tunnel_misconfigured {
        let _ = writeln!(out, "Tunnel:        MISCONFIGURED: {e}");
    }
    out
}

/// The page's banners.
pub fn banners(s: &Snapshot) -> String {
    let mut html = String::new();
    if let Some(e) = &s.restart_error {
        let _ = write!(
            html,
            "<div class=\"pause fault\" id=\"restart-failed\">The last restart FAILED: {}</div>",
            escape(e.as_str())
        );
    }
    if let Some(e) = &s.tunnel_misconfigured {
        let _ = write!(
            html,
            "<div class=\"pause fault\" id=\"tunnel_misconfigured\">The local tunnel is MISCONFIGURED (no failover for it): {}</div>",
            escape(e.as_str())
        );
    }
    html
}
