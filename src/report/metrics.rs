//! The Prometheus metrics, with the names of the product contract. prometheus-client keeps
//! them; [`Metrics::encode`] writes the classic text format (`text/plain; version=0.0.4`, what
//! `promtool check metrics` and most scrapers read) or OpenMetrics when the scraper asks for it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::adapters::http::{ErrorKind, ProbeReport};
use crate::kernel::region::Region;
use crate::report::local::LocalFaults;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Probe durations, in seconds: from a fast loopback answer up to a long timeout.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabel {
    pub region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub region: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub region: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActiveLabels {
    pub region: String,
    pub cloud: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchLabels {
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// Every metric the daemon exports. Clones share the values.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub probe_success: Family<RegionLabel, Gauge>,
    pub probe_duration: Family<RegionLabel, Histogram>,
    pub region_healthy: Family<RegionLabel, Gauge>,
    pub active_region: Family<ActiveLabels, Gauge>,
    pub failovers: Family<SwitchLabels, Counter>,
    pub outage_seconds: Gauge<f64, AtomicU64>,
    pub restart_failures: Counter,
    pub paused: Gauge,
    pub journal_dropped: Counter,
    pub datadog_dropped: Counter,
    pub probe_failures: Family<FailureLabels, Counter>,
    /// Entries waiting in the Datadog spool for the intake to come back.
    pub datadog_spooled: Gauge,
    pub local: LocalFaults,
    /// blackbox_exporter's names, for the active region's probe.
    pub bb: Blackbox,
}

/// The active probe under blackbox_exporter's names, so that its dashboards and alerts apply:
/// `probe_success`, `probe_duration_seconds`, `probe_http_duration_seconds{phase}`,
/// `probe_http_status_code` and `probe_ssl_earliest_cert_expiry`, each with `region`.
#[derive(Clone, Default)]
pub struct Blackbox {
    pub success: Family<RegionLabel, Gauge>,
    pub duration: Family<RegionLabel, Gauge<f64, AtomicU64>>,
    pub phase: Family<PhaseLabels, Gauge<f64, AtomicU64>>,
    pub http_status: Family<RegionLabel, Gauge>,
    pub cert_expiry: Family<RegionLabel, Gauge>,
}

impl Blackbox {
    /// The blackbox_exporter names, registered on `r`.
    fn register(r: &mut Registry) -> Self {
        let b = Blackbox::default();
        r.register(
            "probe_success",
            "Whether the last probe of the active region succeeded (blackbox_exporter's name)",
            b.success.clone(),
        );
        r.register(
            "probe_duration_seconds",
            "How long the last probe of the active region took, in seconds",
            b.duration.clone(),
        );
        r.register(
            "probe_http_duration_seconds",
            "The last probe of the active region by phase: resolve, connect, tls, processing, transfer",
            b.phase.clone(),
        );
        r.register(
            "probe_http_status_code",
            "The HTTP status of the last probe of the active region (0 when none came)",
            b.http_status.clone(),
        );
        r.register(
            "probe_ssl_earliest_cert_expiry",
            "The earliest notAfter (Unix seconds) of the certificate chain the probe saw",
            b.cert_expiry.clone(),
        );
        b
    }
}

/// Why the env file may name a new region (`failovers_total`'s `reason`), all set to 0 at start.
pub const SWITCH_REASONS: [&str; 4] = ["outage", "failback", "manual", "start"];

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let local = LocalFaults::register(&mut r);
        let mut metrics = Metrics {
            registry: Arc::default(),
            probe_success: Family::default(),
            probe_duration: Family::<RegionLabel, Histogram>::new_with_constructor(
                (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
            ),
            region_healthy: Family::default(),
            active_region: Family::default(),
            failovers: Family::default(),
            outage_seconds: Gauge::default(),
            restart_failures: Counter::default(),
            paused: Gauge::default(),
            journal_dropped: Counter::default(),
            datadog_dropped: Counter::default(),
            probe_failures: Family::default(),
            datadog_spooled: Gauge::default(),
            local,
            bb: Blackbox::default(),
        };
        metrics.register_own(&mut r);
        metrics.bb = Blackbox::register(&mut r);
        metrics.registry = Arc::new(r);
        metrics
    }

    /// Registers the handler's own metrics (`failover_handler_*`) on `r`.
    fn register_own(&self, r: &mut Registry) {
        r.register(
            "failover_handler_probe_success",
            "Whether the last probe of the region succeeded (1) or failed (0)",
            self.probe_success.clone(),
        );
        r.register(
            "failover_handler_probe_duration_seconds",
            "How long probes took, failed ones included",
            self.probe_duration.clone(),
        );
        r.register(
            "failover_handler_region_healthy",
            "Whether the region counts as healthy (1) or not (0) after its latest check",
            self.region_healthy.clone(),
        );
        r.register(
            "failover_handler_active_region",
            "1 for the region the env file names (the one in use), 0 for the others",
            self.active_region.clone(),
        );
        r.register(
            "failover_handler_failovers",
            "Switches of the active region, by origin, destination and reason",
            self.failovers.clone(),
        );
        r.register(
            "failover_handler_outage_seconds",
            "How long the active region has been failing without a success (0 when healthy)",
            self.outage_seconds.clone(),
        );
        r.register(
            "failover_handler_restart_failures",
            "Failed supervisorctl calls while restarting the programs",
            self.restart_failures.clone(),
        );
        r.register(
            "failover_handler_paused",
            "1 while automatic switching is paused (failover-handler pause), else 0",
            self.paused.clone(),
        );
        r.register(
            "failover_handler_journal_dropped",
            "Journal lines dropped because the writer was behind",
            self.journal_dropped.clone(),
        );
        r.register(
            "failover_handler_datadog_dropped",
            "Decisions not delivered to Datadog: queue overflow or a batch given up",
            self.datadog_dropped.clone(),
        );
        r.register(
            "failover_handler_probe_failures",
            "Failed probes of the active region, by kind (status, timeout, refused, reset, tls, dns, protocol, io)",
            self.probe_failures.clone(),
        );
        r.register(
            "failover_handler_datadog_spooled",
            "Decisions waiting in the state dir's spool for the Datadog intake",
            self.datadog_spooled.clone(),
        );
    }

    /// Creates every labelled counter at 0 for the configured regions, so that an alert on
    /// `increase()` fires on the first failover or failure, not the second.
    pub fn preset(&self, regions: &[Region]) {
        for from in regions {
            for to in regions.iter().filter(|to| to.name != from.name) {
                for reason in SWITCH_REASONS {
                    let _ = self.failovers.get_or_create(&SwitchLabels {
                        from: from.name.clone(),
                        to: to.name.clone(),
                        reason: reason.to_string(),
                    });
                }
            }
            for kind in ErrorKind::ALL {
                let _ = self.probe_failures.get_or_create(&FailureLabels {
                    region: from.name.clone(),
                    kind: kind.as_str().to_string(),
                });
            }
        }
    }

    /// Marks `active` as the region in use (1) and every other one as not (0).
    pub fn set_active(&self, regions: &[Region], active: usize) {
        for (i, r) in regions.iter().enumerate() {
            self.active_region
                .get_or_create(&ActiveLabels {
                    region: r.name.clone(),
                    cloud: r.cloud.clone(),
                })
                .set(i64::from(i == active));
        }
    }

    /// One probe of the active region `region`.
    pub fn probed(&self, region: &str, report: &ProbeReport) {
        let ok = report.is_ok();
        let label = RegionLabel {
            region: region.to_string(),
        };
        self.probe_success.get_or_create(&label).set(i64::from(ok));
        self.probe_duration
            .get_or_create(&label)
            .observe(report.latency.as_secs_f64());
        let status = match &report.result {
            Ok(code) => Some(*code),
            Err(e) => {
                self.probe_failures
                    .get_or_create(&FailureLabels {
                        region: region.to_string(),
                        kind: e.kind.as_str().to_string(),
                    })
                    .inc();
                e.http_status
            }
        };
        self.bb.success.get_or_create(&label).set(i64::from(ok));
        self.bb
            .duration
            .get_or_create(&label)
            .set(report.latency.as_secs_f64());
        for (phase, took) in report.phases.named() {
            self.bb
                .phase
                .get_or_create(&PhaseLabels {
                    region: region.to_string(),
                    phase: phase.to_string(),
                })
                .set(took.as_secs_f64());
        }
        self.bb
            .http_status
            .get_or_create(&label)
            .set(i64::from(status.unwrap_or(0)));
        match report.cert_not_after {
            Some(t) => {
                self.bb.cert_expiry.get_or_create(&label).set(t);
            }
            None => {
                self.bb.cert_expiry.remove(&label);
            }
        }
    }

    /// `region` is no longer probed: its last probe's gauges go, rather than stay stale.
    /// `still_checked`: a standby check keeps its `region_healthy` up to date.
    pub fn forget_probe(&self, region: &str, still_checked: bool) {
        let label = RegionLabel {
            region: region.to_string(),
        };
        self.probe_success.remove(&label);
        self.bb.success.remove(&label);
        self.bb.duration.remove(&label);
        self.bb.http_status.remove(&label);
        self.bb.cert_expiry.remove(&label);
        for (phase, _) in crate::adapters::http::Phases::default().named() {
            self.bb.phase.remove(&PhaseLabels {
                region: region.to_string(),
                phase: phase.to_string(),
            });
        }
        if !still_checked {
            self.region_healthy.remove(&label);
        }
    }

    pub fn healthy(&self, region: &str, healthy: bool) {
        self.region_healthy
            .get_or_create(&RegionLabel {
                region: region.to_string(),
            })
            .set(i64::from(healthy));
    }

    pub fn switched(&self, from: &str, to: &str, reason: &str) {
        self.failovers
            .get_or_create(&SwitchLabels {
                from: from.to_string(),
                to: to.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The metrics as text, and its content type: OpenMetrics when `accept` asks for it.
    pub fn encode(&self, accept: Option<&str>) -> (String, &'static str) {
        let mut text = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            (text, OPENMETRICS_CONTENT_TYPE)
        } else {
            (to_prometheus_text(&text), TEXT_CONTENT_TYPE)
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// OpenMetrics text to the classic Prometheus text format: a counter's `# HELP` and `# TYPE`
/// name its samples (`x_total`, not `x`), and there are no `# UNIT` or `# EOF` lines.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.switched("NAM", "EU", "outage");
        m.probed("EU", &crate::testing::report(None));
        m.outage_seconds.set(1.5);
        let (text, ctype) = m.encode(None);
        assert_eq!(ctype, TEXT_CONTENT_TYPE);
        assert!(
            text.contains("# HELP failover_handler_failovers_total Switches"),
            "{text}"
        );
        assert!(text.contains("# TYPE failover_handler_failovers_total counter\n"));
        assert!(text.contains(
            "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"} 1\n"
        ));
        assert!(text.contains("# TYPE failover_handler_restart_failures_total counter\n"));
        assert!(text.contains("# TYPE failover_handler_probe_duration_seconds histogram\n"));
        assert!(text.contains("failover_handler_probe_duration_seconds_count{region=\"EU\"} 1\n"));
        assert!(text.contains("failover_handler_outage_seconds 1.5\n"));
        assert!(!text.contains("# EOF"));
        let (om, ctype) = m.encode(Some("application/openmetrics-text;version=1.0.0"));
        assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE failover_handler_failovers counter\n"));
    }

    #[test]
    fn counters_start_at_zero_and_a_switched_away_region_leaves_no_stale_gauges() {
        let regions = crate::kernel::region::parse_failover_list(
            crate::kernel::region::DEFAULT_FAILOVER_LIST,
        )
        .unwrap();
        let m = Metrics::new();
        m.preset(&regions);
        let (text, _) = m.encode(None);
        assert!(text.contains(
            "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"} 0\n"
        ));
        assert!(
            text.contains(
                "failover_handler_probe_failures_total{region=\"APAC\",kind=\"tls\"} 0\n"
            )
        );
        assert_eq!(
            text.matches("failover_handler_failovers_total{").count(),
            24
        );
        let mut failed = crate::testing::report(Some(ErrorKind::Status));
        if let Err(e) = &mut failed.result {
            e.http_status = Some(503);
        }
        failed.cert_not_after = Some(1_906_502_400);
        m.probed("NAM", &failed);
        m.healthy("NAM", false);
        let (text, _) = m.encode(None);
        assert!(
            text.contains(
                "failover_handler_probe_failures_total{region=\"NAM\",kind=\"status\"} 1\n"
            )
        );
        assert!(text.contains("probe_success{region=\"NAM\"} 0\n"));
        assert!(text.contains("probe_http_status_code{region=\"NAM\"} 503\n"));
        assert!(text.contains("probe_ssl_earliest_cert_expiry{region=\"NAM\"} 1906502400\n"));
        assert!(text.contains("probe_http_duration_seconds{region=\"NAM\",phase=\"tls\"} 0.0\n"));
        m.forget_probe("NAM", false);
        let (text, _) = m.encode(None);
        for gone in [
            "probe_success{region=\"NAM\"}",
            "region=\"NAM\",phase=",
            "region_healthy{region=\"NAM\"}",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(
            text.contains(
                "failover_handler_probe_failures_total{region=\"NAM\",kind=\"status\"} 1\n"
            )
        );
    }

    #[test]
    fn active_region_is_one_for_exactly_one_region() {
        let regions = crate::kernel::region::parse_failover_list(
            crate::kernel::region::DEFAULT_FAILOVER_LIST,
        )
        .unwrap();
        let m = Metrics::new();
        m.set_active(&regions, 1);
        let (text, _) = m.encode(None);
        assert!(text.contains(
            "failover_handler_active_region{region=\"EU\",cloud=\"cloud.eu.ext.com\"} 1\n"
        ));
        assert!(text.contains(
            "failover_handler_active_region{region=\"NAM\",cloud=\"cloud.nam.ext.com\"} 0\n"
        ));
    }
}
