//! The demo's summary: what failed, when it was detected, where it moved, and how long each
//! step took, from what the scenario saw.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::narration::{Seen, say, secs};
use crate::config::{Config, duration_text};

/// What the scenario saw, for the summary.
pub(super) struct Timeline {
    pub from_region: String,
    pub from_cloud: String,
    pub outage: Instant,
    pub hang: Instant,
    /// Failed probes from the outage to the failover decision.
    pub failures: Vec<Seen>,
    pub failover: Seen,
    pub written: Seen,
    pub restarted: Seen,
    pub first_ok: Seen,
    pub served: Option<Instant>,
}

impl Timeline {
    /// Prints what failed, when it was detected, where it moved and each step's time.
    pub fn print(&self, config: &Config) {
        let mut s = String::new();
        let _ = writeln!(s, "\nSummary (times from the moment the outage began)");
        self.detection(&mut s, config);
        self.recovery(&mut s, config);
        say(&s);
    }

    /// How long after the outage began `at` was.
    fn since(&self, at: Instant) -> String {
        secs(at.saturating_duration_since(self.outage))
    }

    /// What failed, when the first probe failed, and how long the outage timer ran.
    fn detection(&self, s: &mut String, config: &Config) {
        let t = self;
        let kinds: Vec<&str> = t.failures.iter().fold(Vec::new(), |mut kinds, s| {
            let kind = s.field("error_kind").unwrap_or("?");
            if kinds.last() != Some(&kind) {
                kinds.push(kind);
            }
            kinds
        });
        let _ = writeln!(
            s,
            "  what failed   region {} ({}): HTTP 503 from 0.00s, no answer at all from {}",
            t.from_region,
            t.from_cloud,
            t.since(t.hang)
        );
        if let Some(first) = t.failures.first() {
            let _ = writeln!(
                s,
                "  detected      {}: the first failed probe ({}), probing every {}",
                t.since(first.at),
                first.field("error_kind").unwrap_or("?"),
                duration_text(config.probe.interval)
            );
            let _ = writeln!(
                s,
                "  outage timer  {} of failures, {} probes ({}), against a threshold of {}",
                secs(t.failover.at.saturating_duration_since(first.at)),
                t.failures.len(),
                kinds.join(" then "),
                duration_text(config.failover.threshold)
            );
        }
    }

    /// Where it moved, the env file written, the restart, the first healthy probe and the
    /// total.
    fn recovery(&self, s: &mut String, config: &Config) {
        let t = self;
        let to = t.failover.field("to_region").unwrap_or("?");
        let to_cloud = t.failover.field("to_cloud").unwrap_or("?");
        let env = std::fs::read_to_string(&config.env_file.path)
            .unwrap_or_else(|e| format!("(unreadable: {e})"));
        let restart_ms = t
            .restarted
            .field("duration_ms")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or_else(|| "?".to_string(), |ms| secs(Duration::from_millis(ms)));
        let _ = writeln!(
            s,
            "  moved to      region {to} ({to_cloud}): failover decided at {}",
            t.since(t.failover.at)
        );
        let _ = writeln!(
            s,
            "  env file      written {} after the decision; it now reads: {}",
            format_args!(
                "{:.1}ms",
                t.written
                    .at
                    .saturating_duration_since(t.failover.at)
                    .as_secs_f64()
                    * 1000.0
            ),
            env.trim_end().replace('\n', " / ")
        );
        let _ = writeln!(
            s,
            "  restart       {restart_ms} for 6 steps (stop application, cloud-client, stunnel; start stunnel, cloud-client, application), done at {}",
            t.since(t.restarted.at)
        );
        let _ = writeln!(
            s,
            "  recovered     {}: the first healthy probe on {to}, {} after the restart{}",
            t.since(t.first_ok.at),
            secs(t.first_ok.at.saturating_duration_since(t.restarted.at)),
            t.served.map_or(String::new(), |at| format!(
                " (the fake {to} cloud answered 200 at {})",
                t.since(at)
            ))
        );
        let _ = write!(
            s,
            "  total         {} from the outage to recovery; {} of it is the threshold, by design",
            t.since(t.first_ok.at),
            duration_text(config.failover.threshold)
        );
    }
}
