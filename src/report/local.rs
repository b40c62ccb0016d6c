//! Faults of this host that stay on this host, shown beside the live state: the last restart
//! left a program not RUNNING (`restart_error`), and the local tunnel presents a certificate
//! the handler cannot verify (`tunnel_misconfigured`). Each is a gauge, a field of
//! [`Snapshot`], a line of `status` and a banner of the page.

use std::fmt::Write as _;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use quick_xml::escape::escape;

use crate::report::event::{Event, Place};
use crate::report::snapshot::Snapshot;
use crate::report::view::View;

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

/// How often `tunnel_misconfigured` is said again while it lasts.
pub const TUNNEL_REPEAT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the probes said of the local tunnel's certificate lately.
#[derive(Debug, Default)]
pub struct TunnelWatch {
    /// What is shown now: the last probe's words, while it fails as `tunnel_misconfigured`.
    shown: Option<String>,
    said_at: Option<std::time::SystemTime>,
}

impl TunnelWatch {
    /// A probe of `at` ended with `error`, at `wall`: the view and the gauge follow, and the
    /// event to say, if any (the first time, then every [`TUNNEL_REPEAT`]; a probe that gets
    /// past the tunnel starts over).
    pub fn probed(
        &mut self,
        (view, gauges): (&mut View, &LocalFaults),
        at: &Place,
        error: Option<&crate::adapters::http::ProbeError>,
        wall: std::time::SystemTime,
    ) -> Option<Event> {
        let (shown, say) = self.seen(error, wall);
        if let Some(shown) = shown {
            gauges.tunnel_misconfigured.set(i64::from(shown.is_some()));
            view.set_tunnel_misconfigured(shown);
        }
        let error = error.filter(|_| say)?.detail.clone();
        Some(Event::TunnelMisconfigured {
            at: at.clone(),
            error,
        })
    }

    /// What `/status` shows when it changes, and whether to say it now.
    fn seen(
        &mut self,
        error: Option<&crate::adapters::http::ProbeError>,
        wall: std::time::SystemTime,
    ) -> (Option<Option<String>>, bool) {
        use crate::adapters::http::ErrorKind;
        let now = error
            .filter(|e| e.kind == ErrorKind::TunnelMisconfigured)
            .map(|e| e.detail.clone());
        if now.is_none() {
            self.said_at = None;
        }
        let say = now.is_some()
            && self.said_at.is_none_or(|at| {
                wall.duration_since(at)
                    .is_ok_and(|since| since >= TUNNEL_REPEAT)
            });
        if say {
            self.said_at = Some(wall);
        }
        let changed = (self.shown != now).then(|| now.clone());
        self.shown = now;
        (changed, say)
    }
}
