//! `status` in the shell, and the status file that feeds it. The daemon keeps
//! `<state-dir>/status.json` in step with what it publishes (on change only, at most once a
//! second, off the failover path; removed at a clean stop). The file leaves out what every
//! probe changes (latencies, check times); its reader derives elapsed and remaining times anew. `status` shows the daemon's live view when one
//! runs, from the `/status` endpoint when `--metrics-addr` is set, else from the status file,
//! and what the env file says otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::adapters::http::{Connector, TlsSettings};

use crate::adapters::files::StateDir;
use crate::config::{Config, duration_text};
use crate::report::observer::Published;
use crate::report::view::{PauseView, Snapshot};

pub const STATUS_FILE: &str = "status.json";
/// The status file is rewritten at most this often.
const MIN_GAP: Duration = Duration::from_secs(1);
/// How long `status` waits for the endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);

/// What makes a snapshot news that the status file must carry at once; routine probe
/// results wait for the next `MIN_GAP`.
fn news(s: &Snapshot) -> impl PartialEq + use<> {
    (
        s.active.region.clone(),
        s.last_switch.clone(),
        s.pause.as_ref().map(|p| p.until.clone()),
        s.outage.as_ref().map(|o| (o.region.clone(), o.held_back)),
        s.pin.clone(),
    )
}

/// The state a status file carries, without the times of its writing.
fn state_of(s: &Snapshot) -> Snapshot {
    Snapshot {
        updated_at: String::new(),
        fresh_until: String::new(),
        ..s.at_rest()
    }
}

/// Keeps the status file in step with `published` until `cancel`, then removes it. Written on
/// change only (`Snapshot::at_rest`): a switch, an outage or a pause at once, other changes at
/// most once per `MIN_GAP`; a daemon at rest writes nothing.
pub async fn keep_file(
    state: StateDir,
    mut published: watch::Receiver<Arc<Published>>,
    cancel: CancellationToken,
) {
    let mut failing = false;
    let mut written: Option<Snapshot> = None;
    'outer: loop {
        let mut snapshot = published.borrow_and_update().snapshot.clone();
        if written.as_ref() != Some(&state_of(&snapshot)) {
            let urgent = !failing && written.as_ref().is_none_or(|w| news(w) != news(&snapshot));
            if !urgent {
                let gap = tokio::time::sleep(MIN_GAP);
                tokio::pin!(gap);
                loop {
                    tokio::select! {
                        _ = &mut gap => break,
                        r = published.changed() => {
                            if r.is_err() {
                                break 'outer;
                            }
                            let next = news(&published.borrow_and_update().snapshot);
                            if !failing && written.as_ref().is_some_and(|w| news(w) != next) {
                                break;
                            }
                        }
                        _ = cancel.cancelled() => break 'outer,
                    }
                }
                snapshot = published.borrow_and_update().snapshot.clone();
            }
            let bytes = serde_json::to_vec_pretty(&snapshot.at_rest()).unwrap_or_default();
            let st = state.clone();
            let result = tokio::task::spawn_blocking(move || st.write(STATUS_FILE, &bytes)).await;
            match result {
                Ok(Ok(())) => {
                    failing = false;
                    written = Some(state_of(&snapshot));
                }
                // Tried again at the next change, at most once per `MIN_GAP`.
                Ok(Err(e)) if !failing => {
                    failing = true;
                    warn!(event = "state_write_failed", error = %e, "Cannot write the status file in the state directory ({e}); `status` falls back to the env file");
                }
                _ => {}
            }
        }
        tokio::select! {
            r = published.changed() => if r.is_err() { break },
            _ = cancel.cancelled() => break,
        }
    }
    let _ = tokio::task::spawn_blocking(move || state.remove(STATUS_FILE)).await;
}

/// Where a live view came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewSource {
    Endpoint(String),
    StatusFile(String),
}

impl ViewSource {
    pub fn text(&self) -> &str {
        match self {
            ViewSource::Endpoint(s) | ViewSource::StatusFile(s) => s,
        }
    }
}

/// The URL of `/status` for a listen address (an unspecified address is asked on loopback).
pub fn status_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/status", SocketAddr::new(ip, addr.port()))
}

async fn fetch(url: &str) -> Option<Snapshot> {
    let url = url::Url::parse(url).ok()?;
    let connector = Connector::new(&url, &TlsSettings::default()).ok()?;
    let exchange = async {
        let mut sender = connector
            .connect::<http_body_util::Empty<bytes::Bytes>>(&|_| {})
            .await
            .ok()?;
        let req = http::Request::get(connector.path_and_query(&url))
            .header(http::header::HOST, connector.host_header())
            .header(http::header::CONNECTION, "close")
            .body(http_body_util::Empty::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        if resp.status() != http::StatusCode::OK {
            return None;
        }
        let body = http_body_util::Limited::new(resp.into_body(), 4 * 1024 * 1024)
            .collect()
            .await
            .ok()?
            .to_bytes();
        serde_json::from_slice::<Snapshot>(&body).ok()
    };
    tokio::time::timeout(ENDPOINT_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// Whether the daemon that wrote `s` still runs: its process exists and is this program (or
/// its snapshot is still fresh); without /proc, freshness alone decides.
fn alive(s: &Snapshot, now: SystemTime) -> bool {
    let fresh = humantime::parse_rfc3339(&s.fresh_until).is_ok_and(|t| t > now);
    if !Path::new("/proc/self").exists() {
        return fresh;
    }
    let proc_dir = Path::new("/proc").join(s.pid.to_string());
    if !proc_dir.exists() {
        return false;
    }
    fresh
        || std::fs::read(proc_dir.join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("failover-handler"))
}

/// The daemon's live view, if one runs.
pub async fn live_view(config: &Config) -> Option<(Snapshot, ViewSource)> {
    if let Some(addr) = config.metrics_addr.filter(|a| a.port() != 0) {
        let url = status_url(addr);
        if let Some(s) = fetch(&url).await {
            return Some((s, ViewSource::Endpoint(url)));
        }
    }
    let state = StateDir::read_only(&config.state_dir);
    let path = state.file(STATUS_FILE)?;
    let snapshot: Snapshot = serde_json::from_str(&state.read(STATUS_FILE)?).ok()?;
    let now = SystemTime::now();
    alive(&snapshot, now).then(|| {
        (
            snapshot.aged(now),
            ViewSource::StatusFile(path.display().to_string()),
        )
    })
}

pub fn pause_line(p: Option<&PauseView>) -> String {
    match p {
        None => "automatic".to_string(),
        Some(p) => match (&p.until, p.remaining_ms) {
            (Some(u), Some(left)) => format!(
                "PAUSED until {u} ({} left)",
                duration_text(Duration::from_secs(left / 1000))
            ),
            _ => "PAUSED until `failover-handler resume`".to_string(),
        },
    }
}

/// One line per region: its health, when it was last checked, whether it is active.
fn region_lines(s: &Snapshot) -> String {
    let mut out = String::new();
    for (i, r) in s.regions.iter().enumerate() {
        let health = match (r.healthy, &r.error) {
            (Some(true), _) => format!(
                "healthy  {}",
                r.latency_ms
                    .map(|l| format!("{l:.1} ms"))
                    .unwrap_or_default()
            ),
            (Some(false), Some(e)) => format!("failing  {e}"),
            (Some(false), None) => "failing".to_string(),
            (None, _) => "not checked".to_string(),
        };
        let age = r
            .checked_at
            .as_deref()
            .and_then(|at| humantime::parse_rfc3339(at).ok())
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .map(|d| {
                format!(
                    ", checked {} ago{}",
                    duration_text(Duration::from_secs(d.as_secs())),
                    if r.stale { " (stale)" } else { "" }
                )
            })
            .unwrap_or_default();
        out += &format!(
            "{}{:<6} {health}{age}{}\n",
            if i == 0 {
                "Regions:       "
            } else {
                "               "
            },
            r.name,
            if r.active { "  [active]" } else { "" }
        );
    }
    out
}

/// The outage under way, if any, and whether its failover is held back.
fn outage_line(s: &Snapshot) -> String {
    match &s.outage {
        None => "Outage:        none\n".to_string(),
        Some(o) => format!(
            "Outage:        {} failing for {} of {}{}{}\n",
            o.region,
            duration_text(Duration::from_millis(o.failing_for_ms / 100 * 100)),
            duration_text(Duration::from_millis(o.threshold_ms)),
            o.error_kind
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            if o.held_back {
                "; failover held back (paused)"
            } else {
                ""
            }
        ),
    }
}

/// The live view as text for people.
pub fn render_live(s: &Snapshot, source: &ViewSource, env_file: &str) -> String {
    let mut out = format!(
        "Active region: {} (cloud {}) since {}\n",
        s.active.region, s.active.cloud, s.active.since
    );
    out += &format!(
        "Daemon:        running, pid {}, v{}{}; live view from {} (updated {})\n",
        s.pid,
        s.version,
        if s.dry_run { ", DRY RUN" } else { "" },
        source.text(),
        s.updated_at
    );
    out += &format!("Env file:      {env_file}\n");
    if let Some(e) = &s.env_file_error {
        out += &format!("               NOT WRITTEN: {e} (retried at the next probe)\n");
    }
    out += &crate::report::local::status_lines(s);
    out += &region_lines(s);
    out += &outage_line(s);
    out += &match &s.last_switch {
        None => "Last switch:   none since the daemon started\n".to_string(),
        Some(w) => format!(
            "Last switch:   {} -> {} ({}{}) at {}\n",
            w.from,
            w.to,
            w.reason,
            w.failed_for_ms
                .map(|m| format!(
                    ", after {} of failures",
                    duration_text(Duration::from_millis(m / 100 * 100))
                ))
                .unwrap_or_default(),
            w.at
        ),
    };
    out += &match (&s.pause, &s.fleet_pause) {
        (None, Some(by)) => format!(
            "Switching:     PAUSED for the whole fleet ({by}) until `failover-handler resume --fleet`\n"
        ),
        (pause, _) => format!("Switching:     {}\n", pause_line(pause.as_ref())),
    };
    if let Some(h) = &s.hold_down {
        out += &format!(
            "Hold-down:     no automatic switch before {} (in {}; {} automatic switches in the last hour)\n",
            h.until,
            duration_text(Duration::from_secs(h.remaining_ms / 1000)),
            h.switches_last_hour
        );
    }
    if let Some(pin) = &s.pin {
        out += &format!("Pinned:        {pin}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::{Meta, View};
    use std::time::UNIX_EPOCH;

    fn snapshot(pid: u32, fresh_for: Duration) -> Snapshot {
        let regions = crate::kernel::region::parse_failover_list(
            crate::kernel::region::DEFAULT_FAILOVER_LIST,
        )
        .unwrap();
        let now = SystemTime::now();
        let mut v = View::new(&regions, Duration::from_secs(240), now);
        v.checked(
            0,
            Duration::from_millis(3),
            Some("refused: connection refused".into()),
            now,
        );
        v.switched(0, 1, "outage", Some(Duration::from_secs(241)), now);
        v.checked(1, Duration::from_millis(12), None, now);
        v.snapshot(
            &Meta {
                service: "svc".into(),
                pid,
                started_at: UNIX_EPOCH,
                dry_run: false,
                fresh_for,
                stale_after: fresh_for,
            },
            now,
        )
    }

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        assert_eq!(
            status_url("0.0.0.0:9464".parse().unwrap()),
            "http://127.0.0.1:9464/status"
        );
        assert_eq!(
            status_url("[::]:1".parse().unwrap()),
            "http://[::1]:1/status"
        );
        assert_eq!(
            status_url("10.0.0.2:80".parse().unwrap()),
            "http://10.0.0.2:80/status"
        );
    }

    #[test]
    fn a_status_file_is_live_only_while_its_process_runs() {
        let now = SystemTime::now();
        assert!(alive(
            &snapshot(std::process::id(), Duration::from_secs(30)),
            now
        ));
        // A pid that cannot exist (above pid_max).
        assert!(!alive(
            &snapshot(u32::MAX - 1, Duration::from_secs(30)),
            now
        ));
    }

    #[test]
    fn live_text_names_regions_outage_switch_and_pause() {
        let s = snapshot(7, Duration::from_secs(30));
        let text = render_live(
            &s,
            &ViewSource::StatusFile("/s/status.json".into()),
            "/e.env",
        );
        assert!(
            text.starts_with("Active region: EU (cloud cloud.eu.ext.com)"),
            "{text}"
        );
        assert!(
            text.contains("NAM    failing  refused: connection refused"),
            "{text}"
        );
        assert!(
            text.contains("EU     healthy  12.0 ms, checked 0s ago  [active]"),
            "{text}"
        );
        assert!(text.contains("APAC   not checked"), "{text}");
        assert!(
            text.contains("Last switch:   NAM -> EU (outage, after 4m 1s of failures)"),
            "{text}"
        );
        assert!(text.contains("Switching:     automatic"), "{text}");
        assert!(!text.contains("Hold-down"), "{text}");
    }

    #[test]
    fn live_text_names_the_hold_down_a_failed_write_and_stale_results() {
        let mut s = snapshot(7, Duration::from_secs(30));
        s.hold_down = Some(crate::report::view::HoldDownView {
            until: "2026-12-02T10:00:00.000Z".into(),
            remaining_ms: 240_000,
            switches_last_hour: 2,
        });
        s.env_file_error = Some("cannot write /e.env: No space left on device".into());
        s.regions[0].stale = true;
        let text = render_live(
            &s,
            &ViewSource::StatusFile("/s/status.json".into()),
            "/e.env",
        );
        assert!(
            text.contains("Hold-down:     no automatic switch before 2026-12-02T10:00:00.000Z (in 4m; 2 automatic switches in the last hour)"),
            "{text}"
        );
        assert!(
            text.contains("NOT WRITTEN: cannot write /e.env: No space left on device"),
            "{text}"
        );
        assert!(text.contains("checked 0s ago (stale)"), "{text}");
    }
}
