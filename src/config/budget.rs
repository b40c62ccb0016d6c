//! The time budget of the effective settings, for `failover-handler config`: the worst-case time
//! to detect an outage, to switch and to fail back, the damping schedule, and the settings that
//! work but are doubtful (said by `config` and at the daemon's start).

use std::time::Duration;

use crate::config::threshold_text;
use crate::config::{Choose, Config, Failback, duration_text};

/// Worst case from the start of an outage to the policy's verdict.
fn detect(c: &Config) -> Duration {
    let p = &c.probe;
    p.interval + p.timeout + c.failover.threshold + p.fail_interval.max(p.timeout)
}

/// Worst case for a standby check to say "up" after the target recovers.
fn rise_time(c: &Config) -> Duration {
    let rc = &c.region_checks;
    rc.interval.saturating_mul(rc.rise) + rc.timeout
}

/// Worst case for a standby check to say "down" after the target fails.
fn fall_time(c: &Config) -> Duration {
    let rc = &c.region_checks;
    rc.interval.saturating_mul(rc.fall) + rc.timeout
}

/// Worst-case timings for the effective settings, one line each.
pub fn timing_budget(config: &Config) -> Vec<String> {
    let p = &config.probe;
    let cadence = p.fail_interval.max(p.timeout);
    let detect = detect(config);
    let calls = 2 * config.restart.programs.len();
    let restart = config
        .restart
        .timeout
        .saturating_mul(u32::try_from(calls).unwrap_or(u32::MAX));
    let gate = config.network.throughput_url.is_some() && config.network.min_mbps > 0.0;
    let download = if gate { p.timeout } else { Duration::ZERO };
    let mut lines = vec![format!(
        "outage detected at worst {} after it begins (interval {} + timeout {} + threshold {} + one more probe {})",
        duration_text(detect),
        duration_text(p.interval),
        duration_text(p.timeout),
        threshold_text(config.failover.threshold),
        duration_text(cadence)
    )];
    lines.push(format!(
        "switched at worst {} after it begins{}, if every stop and start call succeeds first time within restart.timeout ({calls} calls of at most {})",
        duration_text(detect + download + restart),
        if gate {
            format!(", with the throughput download (at most {})", duration_text(p.timeout))
        } else {
            String::new()
        },
        duration_text(config.restart.timeout)
    ));
    if config.has_standby_checks() {
        lines.push(format!(
            "standby checks: a region counts as down at worst {} after it fails (fall {} x interval {} + timeout {}), as healthy at worst {} after it recovers (rise {} x interval {} + timeout {}); with no healthy standby the daemon stays where it is",
            duration_text(fall_time(config)),
            config.region_checks.fall,
            duration_text(config.region_checks.interval),
            duration_text(config.region_checks.timeout),
            duration_text(rise_time(config)),
            config.region_checks.rise,
            duration_text(config.region_checks.interval),
            duration_text(config.region_checks.timeout),
        ));
    }
    let preferred_checked = config
        .regions
        .first()
        .is_some_and(|r| r.health_url.is_some());
    lines.push(match (config.failover.failback, &config.preferred) {
        (Failback::Auto, Some(pref)) if preferred_checked => {
            let worst = rise_time(config)
                + config.failover.failback_after
                + p.interval.max(p.timeout)
                + restart;
            format!(
                "failback to {pref} at worst {} after it recovers (rise {} x interval {} + timeout {} + failback_after {} + one probe {} + the restart), unless flap damping holds it or a manual switch pinned the active region",
                duration_text(worst),
                config.region_checks.rise,
                duration_text(config.region_checks.interval),
                duration_text(config.region_checks.timeout),
                duration_text(config.failover.failback_after),
                duration_text(p.interval.max(p.timeout))
            )
        }
        (Failback::Auto, Some(pref)) => format!(
            "failback: never automatic ({pref} has no health_url to show it is healthy again)"
        ),
        _ => "failback: never automatic (failover.failback = \"never\" or no preferred region)"
            .to_string(),
    });
    let t = config.failover.threshold;
    let holds: Vec<String> = (0..4u32)
        .map(|k| duration_text(t.saturating_mul(1 << k).min(crate::kernel::damping::WINDOW)))
        .collect();
    lines.push(format!(
        "flap damping: at most {} automatic switches an hour; hold-down after each: {}, ... (doubling, at most 1h)",
        config.failover.max_switches_per_hour,
        holds.join(", ")
    ));
    lines
}

/// Settings that work but are doubtful, one sentence each.
pub fn doubtful(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let rc = &c.region_checks;
    let checked: Vec<&str> = c
        .regions
        .iter()
        .filter(|r| r.health_url.is_some())
        .map(|r| r.name.as_str())
        .collect();
    let unchecked: Vec<&str> = c
        .regions
        .iter()
        .filter(|r| r.health_url.is_none())
        .map(|r| r.name.as_str())
        .collect();
    if c.probe.fail_interval > c.probe.interval {
        out.push(format!(
            "probe.fail_interval {} is longer than probe.interval {}: an outage is confirmed more slowly than probes run when healthy",
            duration_text(c.probe.fail_interval),
            duration_text(c.probe.interval)
        ));
    }
    if (!checked.is_empty() || !c.network.reference.is_empty()) && rc.timeout >= rc.interval {
        out.push(format!(
            "region_checks.timeout {} is not below region_checks.interval {}: a hanging check stretches the check cadence",
            duration_text(rc.timeout),
            duration_text(rc.interval)
        ));
    }
    if !checked.is_empty() && !unchecked.is_empty() {
        out.push(format!(
            "regions without a health_url ({}) are taken as healthy standbys whatever their state",
            unchecked.join(", ")
        ));
    }
    if !checked.is_empty() && fall_time(c) > c.failover.threshold {
        out.push(format!(
            "a standby is seen down only {} after it fails (region_checks fall x interval + timeout), later than the threshold {}: an outage that hits two regions at once may move to the other one",
            duration_text(fall_time(c)),
            duration_text(c.failover.threshold)
        ));
    }
    if c.failover.choose == Choose::Latency && checked.is_empty() {
        out.push(
            "failover.choose = \"latency\" has no effect without a health_url on the regions"
                .to_string(),
        );
    }
    if let (Failback::Auto, Some(pref)) = (c.failover.failback, &c.preferred)
        && c.regions.first().is_some_and(|r| r.health_url.is_none())
    {
        out.push(format!(
            "failover.failback = \"auto\" needs a health_url on the preferred region {pref} to know it is healthy again: it will never fail back"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::config_with_file as config;

    const REGIONS: &str = "region = \"EU\"\n\
        [[regions]]\nname = \"NAM\"\ncloud = \"n\"\nhealth_url = \"tcp://127.0.0.1:1\"\n\
        [[regions]]\nname = \"EU\"\ncloud = \"e\"\nhealth_url = \"https://e.example/health\"\n";

    #[test]
    fn budget_lines_add_up() {
        let c = config(
            &format!(
                "{REGIONS}[failover]\nfailback = \"auto\"\nfailback_after = \"10m\"\n[probe]\nfail_interval = \"2s\"\n"
            ),
            &[],
        );
        let lines = timing_budget(&c);
        // 10s + 5s + 4m + max(2s, 5s)
        assert!(
            lines[0].starts_with("outage detected at worst 4m 20s "),
            "{lines:#?}"
        );
        // + 6 supervisorctl calls of 60s
        assert!(
            lines[1].starts_with("switched at worst 10m 20s "),
            "{lines:#?}"
        );
        assert!(lines[2].contains("down at worst 25s"), "{lines:#?}");
        // 2 x 10s + 5s + 10m + 10s + 6m
        assert!(
            lines[3].starts_with("failback to EU at worst 16m 35s "),
            "{lines:#?}"
        );
        assert!(lines[4].contains("4m, 8m, 16m, 32m"), "{lines:#?}");
    }

    #[test]
    fn plain_settings_say_no_failback_and_no_standby_line() {
        let c = config("", &[]);
        let lines = timing_budget(&c);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[2].starts_with("failback: never"), "{lines:#?}");
        assert!(doubtful(&c).is_empty());
    }

    #[test]
    fn doubtful_settings_table() {
        // (config text, words the warnings must contain; empty: no warning)
        let cases: &[(&str, &[&str])] = &[
            (
                "[probe]\nfail_interval = \"20s\"\n",
                &["probe.fail_interval 20s"],
            ),
            (
                "[[regions]]\nname = \"A\"\ncloud = \"a\"\nhealth_url = \"tcp://h:1\"\n[region_checks]\ntimeout = \"10s\"\n",
                &["region_checks.timeout 10s"],
            ),
            (
                "[[regions]]\nname = \"A\"\ncloud = \"a\"\nhealth_url = \"tcp://h:1\"\n[[regions]]\nname = \"B\"\ncloud = \"b\"\n",
                &["(B) are taken as healthy"],
            ),
            (
                "[[regions]]\nname = \"A\"\ncloud = \"a\"\nhealth_url = \"tcp://h:1\"\n[region_checks]\ninterval = \"2m\"\nfall = 3\n",
                &["seen down only 6m 5s"],
            ),
            (
                "[failover]\nchoose = \"latency\"\n",
                &["no effect without a health_url"],
            ),
            (
                "region = \"EU\"\n[failover]\nfailback = \"auto\"\n",
                &["health_url on the preferred region EU"],
            ),
            (REGIONS, &[]),
        ];
        for (toml, want) in cases {
            let got = doubtful(&config(toml, &[])).join("\n");
            if want.is_empty() {
                assert!(got.is_empty(), "{toml}: {got}");
            }
            for w in *want {
                assert!(got.contains(w), "{toml}: {got}");
            }
        }
    }
}
