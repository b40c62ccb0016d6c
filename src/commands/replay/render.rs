//! The replay in words: a side-by-side text for people, JSON for scripts. The decision names
//! are the journal's own `event` names.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::Replay;
use super::answers::Assumed;
use super::compare::Difference;
use super::timeline::{Decided, DecisionKind, JournalInput, Timeline};
use crate::config::{Config, Failback, duration_text, timestamp};
use crate::report::event::ms;
use crate::report::journal::FORMAT_VERSION;

/// The last line: `same decisions`, or how many differ.
pub fn summary(r: &Replay) -> String {
    match r.differences.len() {
        0 => "same decisions".to_string(),
        1 => "1 decision differs".to_string(),
        n => format!("{n} decisions differ"),
    }
}

fn clock(t: &Timeline, at: Duration) -> String {
    let stamp = timestamp(t.start + at);
    stamp.get(11..23).unwrap_or(&stamp).to_string()
}

fn human_ms(d: Duration) -> String {
    duration_text(Duration::from_millis(ms(d)))
}

fn probes(n: usize) -> String {
    match n {
        1 => "1 replayed probe".to_string(),
        n => format!("{n} replayed probes"),
    }
}

fn decided(t: &Timeline, d: &Decided) -> String {
    let to =
        d.to.as_ref()
            .map_or(String::new(), |to| format!(" -> {to}"));
    let took = match (d.kind, d.took) {
        (_, None) => String::new(),
        (DecisionKind::Failback, Some(h)) => format!(", healthy for {}", human_ms(h)),
        (_, Some(f)) => format!(", failed for {}", human_ms(f)),
    };
    format!(
        "{} {} {}{to}{took}",
        clock(t, d.at),
        d.kind.as_str(),
        d.from
    )
}

fn failback(config: &Config) -> String {
    match (config.failover.failback, &config.preferred) {
        (Failback::Auto, Some(_)) => {
            format!(
                "failback after {}",
                duration_text(config.failover.failback_after)
            )
        }
        (Failback::Auto, None) => "failback auto (no effect without a preferred region)".into(),
        (Failback::Never, _) => "failback never".into(),
    }
}

fn settings(config: &Config) -> String {
    let p = &config.probe;
    let order: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
    format!(
        "order {}; interval {}, fail_interval {}, timeout {}, threshold {}; {}; at most {} switches an hour",
        order.join(","),
        duration_text(p.interval),
        duration_text(p.fail_interval),
        duration_text(p.timeout),
        duration_text(config.failover.threshold),
        failback(config),
        config.failover.max_switches_per_hour
    )
}

fn ran_with(t: &Timeline) -> Option<String> {
    let each: Vec<String> = t
        .ran_with
        .iter()
        .map(|(i, th)| format!("interval {}, threshold {}", human_ms(*i), human_ms(*th)))
        .collect();
    (!each.is_empty()).then(|| each.join("; then "))
}

fn assumption(region: &str, a: &Assumed, n: usize) -> String {
    let n = probes(n);
    match a {
        Assumed::NeverRecorded => {
            format!("{region} never appears in the journal: assumed healthy ({n})")
        }
        Assumed::NextOutcome(o) => format!(
            "{region} was probed by the replay before the journal's next word on it: that word ({o}) assumed to hold already ({n})"
        ),
        Assumed::LastOutcome(o) => format!(
            "{region} was not being probed by the daemon: its last recorded outcome ({o}) assumed to hold ({n})"
        ),
    }
}

/// What the replay assumed or left out.
fn notes(r: &Replay, config: &Config) -> Vec<String> {
    let t = &r.timeline;
    let s = &r.simulation;
    let mut n: Vec<String> = s
        .assumed
        .iter()
        .map(|((region, a), probes)| assumption(region, a, *probes))
        .collect();
    let probed = t
        .inputs
        .iter()
        .any(|(_, h)| matches!(h, JournalInput::Probe { .. }));
    if !probed {
        n.push("the journal records no probe outcome (probe_changed): the replay cannot see any outage".into());
    }
    if s.joined_midway {
        n.push("the journal begins while the daemon was running: the replay starts at its first recorded probe".into());
    }
    if t.fleet {
        n.push("the journal is a fleet host's: the fleet's leader moved it by quorum, the replay applies this host's own rules".into());
    }
    if config.has_standby_checks() {
        n.push("standby checks are not journaled: every standby is taken as usable".into());
    }
    if let (Some(_), Some(preferred)) = (config.rules().failback_after, &config.preferred) {
        n.push(format!("failback: {preferred} counts as healthy when its own probes or a recorded failback say so, else as last recorded"));
    }
    if s.gate_assumed {
        n.push("the throughput gate is not journaled: its measurement assumed to pass".into());
    }
    if t.skipped > 0 {
        n.push(format!(
            "{} records of an unknown type or without a readable timestamp were skipped",
            t.skipped
        ));
    }
    n
}

/// One difference side by side: what was recorded, what the replay would have done.
fn row(t: &Timeline, d: &Difference) -> (String, String) {
    match d {
        Difference::NotMade(d) => (decided(t, d), "would not have happened".to_string()),
        Difference::Extra(d) => ("none".to_string(), decided(t, d)),
        Difference::OtherTime { recorded, replay } => (
            decided(t, recorded),
            format!("at another time: {}", decided(t, replay)),
        ),
        Difference::OtherRegion { recorded, replay } => (
            decided(t, recorded),
            format!("to another region: {}", decided(t, replay)),
        ),
    }
}

/// The text for people: the settings, the differing decisions side by side, each outage's
/// time to failover under both, the notes, and the summary last.
pub fn text(r: &Replay, config: &Config, journal: &Path) -> String {
    let t = &r.timeline;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Replay of {}: {} to {} ({})",
        journal.display(),
        timestamp(t.start),
        timestamp(t.start + t.end),
        human_ms(t.end)
    );
    let _ = writeln!(s, "Settings: {}", settings(config));
    if let Some(ran) = ran_with(t) {
        let _ = writeln!(s, "Recorded with: {ran}");
    }
    let _ = writeln!(
        s,
        "Decisions: {} recorded, {} in the replay ({}); within {} of each other they are the same",
        t.recorded.len(),
        r.simulation.decisions.len(),
        probes(r.simulation.probes),
        duration_text(r.tolerance)
    );
    let rows: Vec<(String, String)> = r.differences.iter().map(|d| row(t, d)).collect();
    if !rows.is_empty() {
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let _ = writeln!(s, "\n{:<width$} | replay", "recorded");
        for (left, right) in rows {
            let _ = writeln!(s, "{left:<width$} | {right}");
        }
    }
    if !r.outages.is_empty() {
        let _ = writeln!(s, "\nTime to failover of each outage (recorded | replay):");
        for o in &r.outages {
            let lasted = o.lasted.map_or("not seen to end".to_string(), |d| {
                format!("lasted {}", human_ms(d))
            });
            let show = |d: Option<Duration>| d.map_or("no failover".to_string(), human_ms);
            let _ = writeln!(
                s,
                "  {} from {} ({lasted}): {} | {}",
                o.region,
                clock(t, o.began),
                show(o.recorded),
                show(o.replay)
            );
        }
    }
    if !t.held.is_empty() {
        let _ = writeln!(
            s,
            "\nHeld back by the daemon (as recorded; the replay does not see why):"
        );
        for h in &t.held {
            let _ = writeln!(
                s,
                "  {} {} {}: {}",
                clock(t, h.at),
                h.event,
                h.region,
                h.reason
            );
        }
    }
    let notes = notes(r, config);
    if !notes.is_empty() {
        let _ = writeln!(s);
        for n in notes {
            let _ = writeln!(s, "Note: {n}");
        }
    }
    let _ = writeln!(s, "\n{}", summary(r));
    s
}

fn decided_json(t: &Timeline, d: &Decided) -> Value {
    let mut v = json!({
        "timestamp": timestamp(t.start + d.at),
        "event": d.kind.as_str(),
        "region": d.from,
        "to_region": d.to,
    });
    let took = match d.kind {
        DecisionKind::Failback => "healthy_for_ms",
        _ => "failed_for_ms",
    };
    v[took] = d.took.map(ms).into();
    v
}

/// The same for scripts: every decision on both sides, the differences, the outages.
pub fn json(r: &Replay, config: &Config, journal: &Path) -> Value {
    let t = &r.timeline;
    let p = &config.probe;
    let f = &config.failover;
    let dj = |d: &Decided| decided_json(t, d);
    let differences: Vec<Value> = r
        .differences
        .iter()
        .map(|d| {
            let (how, recorded, replay) = match d {
                Difference::NotMade(d) => ("not_made", Some(d), None),
                Difference::Extra(d) => ("extra", None, Some(d)),
                Difference::OtherTime { recorded, replay } => {
                    ("other_time", Some(recorded), Some(replay))
                }
                Difference::OtherRegion { recorded, replay } => {
                    ("other_region", Some(recorded), Some(replay))
                }
            };
            json!({ "how": how, "recorded": recorded.map(dj), "replay": replay.map(dj) })
        })
        .collect();
    let outages: Vec<Value> = r
        .outages
        .iter()
        .map(|o| {
            json!({
                "region": o.region,
                "began": timestamp(t.start + o.began),
                "lasted_ms": o.lasted.map(ms),
                "recorded_failover_after_ms": o.recorded.map(ms),
                "replay_failover_after_ms": o.replay.map(ms),
            })
        })
        .collect();
    let failback_after = (config.rules().failback_after).map(ms);
    json!({
        "format_version": FORMAT_VERSION,
        "journal": journal.display().to_string(),
        "from": timestamp(t.start),
        "to": timestamp(t.start + t.end),
        "settings": {
            "order": config.regions.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            "interval_ms": ms(p.interval),
            "fail_interval_ms": ms(p.fail_interval),
            "timeout_ms": ms(p.timeout),
            "threshold_ms": ms(f.threshold),
            "failback_after_ms": failback_after,
            "max_switches_per_hour": f.max_switches_per_hour,
        },
        "tolerance_ms": ms(r.tolerance),
        "recorded": t.recorded.iter().map(dj).collect::<Vec<_>>(),
        "replay": r.simulation.decisions.iter().map(dj).collect::<Vec<_>>(),
        "held": t.held.iter().map(|h| json!({
            "timestamp": timestamp(t.start + h.at),
            "event": h.event,
            "region": h.region,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
        "differences": differences,
        "outages": outages,
        "notes": notes(r, config),
        "same": r.differences.is_empty(),
        "summary": summary(r),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{outage, run};
    use super::*;
    use crate::config::cli::RuleFlags;

    #[test]
    fn the_text_sets_the_decisions_side_by_side() {
        let r = run(&outage(), &["--threshold", "5m"], RuleFlags::default());
        let config = crate::testing::config(&["--threshold", "5m"]);
        let got = text(&r, &config, Path::new("journal.jsonl"));
        let want = "\
Replay of journal.jsonl: 2027-01-15T08:00:00.000Z to 2027-01-15T08:06:40.000Z (6m 40s)
Settings: order NAM,EU,APAC; interval 10s, fail_interval 10s, timeout 5s, threshold 5m; failback never; at most 6 switches an hour
Recorded with: interval 10s, threshold 4m
Decisions: 1 recorded, 0 in the replay (42 replayed probes); within 20s of each other they are the same

recorded                                       | replay
08:05:40.050 failover NAM -> EU, failed for 4m | would not have happened

Time to failover of each outage (recorded | replay):
  NAM from 08:01:40.050 (not seen to end): 4m | no failover

Note: NAM was not being probed by the daemon: its last recorded outcome (failure) assumed to hold (3 replayed probes)

1 decision differs
";
        assert_eq!(got, want);
        let v = json(&r, &config, Path::new("journal.jsonl"));
        assert_eq!(v["same"], false);
        assert_eq!(v["differences"][0]["how"], "not_made");
        assert_eq!(v["differences"][0]["recorded"]["failed_for_ms"], 240_000);
        assert_eq!(v["outages"][0]["recorded_failover_after_ms"], 240_000);
        assert_eq!(v["settings"]["threshold_ms"], 300_000);
    }
}
