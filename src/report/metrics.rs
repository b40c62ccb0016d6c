//! The Prometheus metrics, with the names of the product contract. prometheus-client keeps
//! them; [`Metrics::encode`] writes the classic text format (`text/plain; version=0.0.4`, what
//! `promtool check metrics` and most scrapers read) or OpenMetrics when the scraper asks for it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::kernel::region::Region;

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
}

impl Metrics {
    pub fn new() -> Self {
        let probe_success = Family::<RegionLabel, Gauge>::default();
        let probe_duration = Family::<RegionLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        let region_healthy = Family::<RegionLabel, Gauge>::default();
        let active_region = Family::<ActiveLabels, Gauge>::default();
        let failovers = Family::<SwitchLabels, Counter>::default();
        let outage_seconds = Gauge::<f64, AtomicU64>::default();
        let restart_failures = Counter::default();
        let paused = Gauge::default();
        let journal_dropped = Counter::default();
        let datadog_dropped = Counter::default();
        let mut r = Registry::default();
        r.register(
            "failover_handler_probe_success",
            "Whether the last probe of the region succeeded (1) or failed (0)",
            probe_success.clone(),
        );
        r.register(
            "failover_handler_probe_duration_seconds",
            "How long probes took, failed ones included",
            probe_duration.clone(),
        );
        r.register(
            "failover_handler_region_healthy",
            "Whether the region counts as healthy (1) or not (0) after its latest check",
            region_healthy.clone(),
        );
        r.register(
            "failover_handler_active_region",
            "1 for the region the env file names (the one in use), 0 for the others",
            active_region.clone(),
        );
        r.register(
            "failover_handler_failovers",
            "Switches of the active region, by origin, destination and reason",
            failovers.clone(),
        );
        r.register(
            "failover_handler_outage_seconds",
            "How long the active region has been failing without a success (0 when healthy)",
            outage_seconds.clone(),
        );
        r.register(
            "failover_handler_restart_failures",
            "Failed supervisorctl calls while restarting the programs",
            restart_failures.clone(),
        );
        r.register(
            "failover_handler_paused",
            "1 while automatic switching is paused (failover-handler pause), else 0",
            paused.clone(),
        );
        r.register(
            "failover_handler_journal_dropped",
            "Journal lines dropped because the writer was behind",
            journal_dropped.clone(),
        );
        r.register(
            "failover_handler_datadog_dropped",
            "Decisions not delivered to Datadog: queue overflow or a batch given up",
            datadog_dropped.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            probe_success,
            probe_duration,
            region_healthy,
            active_region,
            failovers,
            outage_seconds,
            restart_failures,
            paused,
            journal_dropped,
            datadog_dropped,
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

    /// One probe of `region`.
    pub fn probed(&self, region: &str, ok: bool, took: Duration) {
        let label = RegionLabel {
            region: region.to_string(),
        };
        self.probe_success.get_or_create(&label).set(i64::from(ok));
        self.probe_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
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
        m.probed("EU", true, Duration::from_millis(20));
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
