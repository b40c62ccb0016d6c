//! Region intelligence as a user sees it: the real binary with standby checks against HTTPS
//! and TCP servers on 127.0.0.1 (the harness's fake tunnel, one per region, serves as each
//! region's health endpoint), short timings (probe every 100 ms, threshold 1 s).

use crate::support::{
    Cmd, Daemon, FakeTunnel, Mode, RESTART_ORDER, TestDir, assert_fields, between, cloud_of,
    env_for,
};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A test's world: the tunnel of the main probe, one health server per region, and one
/// reference target.
struct World {
    dir: TestDir,
    tunnel: FakeTunnel,
    nam: FakeTunnel,
    eu: FakeTunnel,
    apac: FakeTunnel,
    reference: FakeTunnel,
}

/// The health endpoint is served while its mode is `Up`; `Status(503)` and `Refuse` are down.
fn up(yes: bool) -> Mode {
    if yes { Mode::Up } else { Mode::Status(503) }
}

impl World {
    /// EU is active (env file) and preferred; `eu_probe` is how the tunnel answers for EU;
    /// the health endpoints of NAM, EU and APAC start up or down as told.
    fn new(eu_probe: Mode, nam: bool, eu: bool, apac: bool) -> World {
        let dir = TestDir::new();
        dir.write_env(&env_for("EU"));
        let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("EU", eu_probe)]);
        // NAM is checked over TCP: down means refused.
        let nam = FakeTunnel::start_with(&dir, if nam { Mode::Up } else { Mode::Refuse }, &[]);
        let eu = FakeTunnel::start_with(&dir, up(eu), &[]);
        let apac = FakeTunnel::start_with(&dir, up(apac), &[]);
        let reference = FakeTunnel::start_with(&dir, Mode::Up, &[]);
        World {
            dir,
            tunnel,
            nam,
            eu,
            apac,
            reference,
        }
    }

    /// Writes the config file: the three regions with their health URLs, fast checks, and
    /// `extra` TOML (sections of its own) appended.
    fn config(&self, failover: &str, extra: &str) -> String {
        let health = |t: &FakeTunnel| format!("https://127.0.0.1:{}/health", t.port());
        let text = format!(
            "[[regions]]\nname = \"NAM\"\ncloud = \"{}\"\nhealth_url = \"tcp://127.0.0.1:{}\"\n\
             [[regions]]\nname = \"EU\"\ncloud = \"{}\"\nhealth_url = \"{}\"\n\
             [[regions]]\nname = \"APAC\"\ncloud = \"{}\"\nhealth_url = \"{}\"\n\
             [region_checks]\ninterval = \"100ms\"\ntimeout = \"400ms\"\nrise = 2\nfall = 2\n\
             [failover]\n{failover}\n{extra}",
            cloud_of("NAM"),
            self.nam.port(),
            cloud_of("EU"),
            health(&self.eu),
            cloud_of("APAC"),
            health(&self.apac),
        );
        let path = self.dir.write_file("failover.toml", &text);
        path.display().to_string()
    }

    fn cmd(&self, failover: &str, extra: &str) -> Cmd {
        Cmd::new(&self.dir)
            .tunnel(&self.tunnel)
            .flag("--region", "EU")
            .flag("--config", &self.config(failover, extra))
    }

    /// Takes EU down or up, for the main probe and its health endpoint alike.
    fn eu(&self, healthy: bool) {
        self.tunnel.set_region("EU", up(healthy));
        self.eu.set_default(up(healthy));
    }

    fn restarts(&self) -> usize {
        self.dir.calls().len() / RESTART_ORDER.len()
    }
}

fn event(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == name
}

/// Waits for `n` more failed probes than `d` has logged so far: `n` intervals of the daemon
/// living through the outage, however loaded the machine.
fn more_failed_probes(d: &Daemon, n: usize) {
    let seen = d.events("probe_failed").len();
    d.wait_for_count(event("probe_failed"), seen + n, Duration::from_secs(60));
}

fn health_event(region: &'static str, health: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == "region_health" && v["region"] == region && v["health"] == health
}

#[test]
fn eu_failing_with_nam_down_and_apac_up_moves_straight_to_apac() {
    let w = World::new(Mode::Status(503), false, false, true);
    let latency_file = w.dir.path().join("latency.txt");
    let d = w
        .cmd(
            "",
            &format!("[network]\nlatency_file = \"{}\"\n", latency_file.display()),
        )
        .spawn_daemon();

    let nam_down = d.wait_for(health_event("NAM", "down"), WAIT);
    assert_eq!(nam_down["error_kind"], "refused", "{nam_down}");
    d.wait_for(health_event("APAC", "up"), WAIT);
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(
        failover["message"],
        "Waited for 1s. Application restarting due to failure with Ext Cloud: cloud.eu.ext.com"
    );
    assert_eq!(failover["to_region"], "APAC", "{}", d.dump());
    let restarting = d.wait_for_event("restarting", WAIT);
    assert_eq!(
        restarting["message"],
        "Re-starting application with the new region APAC and cloud cloud.apac.ext.com."
    );
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(w.dir.read_env(), Some(env_for("APAC")));
    assert_eq!(w.restarts(), 1);

    // APAC answers through the tunnel: the latency file holds the last latency in ms
    crate::support::wait_until(WAIT, "the latency file", || {
        std::fs::read_to_string(&latency_file)
            .is_ok_and(|t| t.ends_with('\n') && t.trim().parse::<u64>().is_ok())
    });
    assert!(d.events("failover_deferred").is_empty(), "{}", d.dump());
    d.finish();
}

#[test]
fn all_regions_down_causes_no_switch_and_no_restart_then_moves_when_one_recovers() {
    let w = World::new(Mode::Status(503), false, false, false);
    let d = w.cmd("", "").spawn_daemon();

    let deferred = d.wait_for_event("failover_deferred", WAIT);
    assert_fields(
        &deferred,
        &[
            ("reason", "all_regions_down"),
            ("level", "WARN"),
            ("region", "EU"),
            ("cloud", "cloud.eu.ext.com"),
        ],
    );
    // several thresholds more: no switch, no restart, said once
    more_failed_probes(&d, 30);
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    assert_eq!(d.events("failover_deferred").len(), 1, "{}", d.dump());
    assert_eq!(w.dir.calls(), Vec::<String>::new());
    assert_eq!(w.dir.read_env(), Some(env_for("EU")));
    assert!(
        d.events("probe_failed").len() > 20,
        "it keeps probing\n{}",
        d.dump()
    );

    // APAC comes back: the daemon moves there
    w.apac.set_default(Mode::Up);
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(failover["to_region"], "APAC", "{failover}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(w.dir.read_env(), Some(env_for("APAC")));
    d.finish();
}

/// A held failover is a decision like any other: the journal keeps it, `/history` shows it,
/// and `replay` lists it among what the daemon held back.
#[test]
fn a_held_failover_reaches_the_journal_history_and_replay() {
    let w = World::new(Mode::Status(503), false, false, false);
    let d = w
        .cmd("", "")
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = crate::observe::listening(&d);
    d.wait_for_event("failover_deferred", WAIT);
    let held = |r: &Value| {
        r["event"] == "failover_deferred"
            && r["reason"] == "all_regions_down"
            && r["region"] == "EU"
            && r["level"] == "WARN"
    };
    crate::support::wait_until(WAIT, "the hold in /history", || {
        let history = crate::observe::get_json(&addr, "/history");
        history["decisions"]
            .as_array()
            .is_some_and(|ds| ds.iter().any(held))
    });
    d.finish();
    let journal = crate::observe::journal_lines(&w.dir);
    assert_eq!(journal.iter().filter(|r| held(r)).count(), 1, "{journal:?}");

    let path = w.dir.state_dir().join("journal.jsonl");
    let out = w
        .cmd("", "")
        .sub(&["replay", "--journal", path.to_str().unwrap()])
        .exits(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("failover_deferred"))
        .unwrap_or_else(|| panic!("no hold in the replay: {out:#?}"));
    assert!(
        line.ends_with(" failover_deferred EU: all_regions_down"),
        "{line}"
    );
    assert!(!out.stdout.contains("were skipped"), "{}", out.stdout);
}

#[test]
fn a_host_network_fault_defers_the_failover() {
    let w = World::new(Mode::Refuse, false, false, false);
    w.reference.set_default(Mode::Refuse);
    let d = w
        .cmd(
            "",
            &format!(
                "[network]\nreference = [\"tcp://127.0.0.1:{}\"]\n",
                w.reference.port()
            ),
        )
        .spawn_daemon();

    let reference_down = d.wait_for(
        |v| v["event"] == "reference_health" && v["health"] == "down",
        WAIT,
    );
    assert_eq!(
        reference_down["target"],
        format!("tcp://127.0.0.1:{}", w.reference.port())
    );
    let deferred = d.wait_for_event("failover_deferred", WAIT);
    assert_eq!(deferred["reason"], "host_network", "{}", d.dump());
    let message = deferred["message"].as_str().unwrap_or_default();
    assert!(message.contains("this host's network"), "{deferred}");
    more_failed_probes(&d, 25);
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    assert_eq!(d.events("failover_deferred").len(), 1, "{}", d.dump());
    assert_eq!(w.dir.calls(), Vec::<String>::new());
    assert_eq!(w.dir.read_env(), Some(env_for("EU")));
    d.finish();
}

/// The daemon with the `[failover]` settings `failover`, EU failing, NAM and APAC healthy, once
/// it has failed over to NAM.
fn failed_over_to_nam(failover: &str) -> (World, Daemon) {
    let w = World::new(Mode::Status(503), true, false, true);
    let d = w.cmd(failover, "").spawn_daemon();
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(failover["to_region"], "NAM", "{failover}");
    (w, d)
}

#[test]
fn auto_failback_comes_only_after_failback_after_of_health() {
    let (w, d) = failed_over_to_nam("failback = \"auto\"\nfailback_after = \"2s\"\n");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(w.dir.read_env(), Some(env_for("NAM")));

    w.eu(true);
    let eu_up = d.wait_for(health_event("EU", "up"), WAIT);
    let failback = d.wait_for_event("failback", WAIT);
    let waited = between(&eu_up, &failback);
    println!("failback {waited:?} after EU's checks said up");
    assert!(
        waited >= Duration::from_secs(2),
        "failback only {waited:?} after EU was healthy\n{}",
        d.dump()
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}\n{}", d.dump());
    assert_eq!(failback["region"], "NAM", "{failback}");
    assert_eq!(failback["to_region"], "EU", "{failback}");
    let restarting = d.wait_for_count(event("restarting"), 2, WAIT).remove(1);
    assert_eq!(
        restarting["message"],
        "Re-starting application with the new region EU and cloud cloud.eu.ext.com."
    );
    crate::support::wait_until(WAIT, "two restarts", || w.restarts() == 2);
    assert_eq!(w.dir.read_env(), Some(env_for("EU")));
    d.finish();
}

#[test]
fn no_failback_away_from_a_pinned_region_until_unpin() {
    let w = World::new(Mode::Up, true, true, true);
    let failover = "failback = \"auto\"\nfailback_after = \"300ms\"\n";
    let d = w.cmd(failover, "").spawn_daemon();
    d.wait_for(health_event("EU", "up"), WAIT);

    let out = w.cmd(failover, "").sub(&["switch", "NAM"]).exits(0);
    assert!(out.stdout.contains("Pinned NAM"), "{out:#?}");
    let pin = w.dir.state_dir().join("pin");
    assert_eq!(std::fs::read_to_string(&pin).unwrap(), "NAM\n");
    let mode = std::fs::metadata(&pin).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "pin file mode {mode:o}");
    d.wait_for_event("adopted", WAIT);

    // EU stays healthy for many times failback_after: no failback
    let checks = w.eu.request_count();
    crate::support::wait_until(WAIT, "20 more health checks of EU", || {
        w.eu.request_count() >= checks + 20
    });
    assert!(d.events("failback").is_empty(), "{}", d.dump());
    assert_eq!(w.dir.read_env(), Some(env_for("NAM")));

    let out = w.cmd(failover, "").sub(&["switch"]).arg("--unpin").exits(0);
    assert!(out.stdout.contains("Unpinned NAM"), "{out:#?}");
    assert!(!pin.exists());
    d.wait_for(|v| v["event"] == "unpinned" && v["reason"] == "unpin", WAIT);
    let failback = d.wait_for_event("failback", WAIT);
    assert_eq!(failback["to_region"], "EU", "{failback}");
    d.wait_for_count(event("restart_done"), 1, WAIT);
    crate::support::wait_until(WAIT, "the failback's restart", || w.restarts() == 2);
    assert_eq!(w.dir.read_env(), Some(env_for("EU")));
    d.finish();
}

#[test]
fn a_flapping_preferred_region_is_held_back_by_damping() {
    // 1: EU fails, the daemon moves to NAM
    let (w, d) = failed_over_to_nam(
        "failback = \"auto\"\nfailback_after = \"300ms\"\nmax_switches_per_hour = 2\n",
    );
    // 2: EU comes back, the daemon fails back
    w.eu(true);
    d.wait_for_event("failback", WAIT);
    crate::support::wait_until(WAIT, "the failback", || {
        w.dir.read_env() == Some(env_for("EU"))
    });
    // 3: EU fails again: the third automatic switch within the hour is held back
    w.eu(false);
    let held = d.wait_for(
        |v| v["event"] == "failover_deferred" && v["reason"] == "damped",
        WAIT,
    );
    assert_eq!(held["region"], "EU", "{held}");
    assert_eq!(held["to_region"], "NAM", "{held}");
    let next = held["next_allowed_in_ms"].as_u64().unwrap_or_default();
    assert!(next > 3_500_000 && next <= 3_600_000, "{held}");
    assert_eq!(held["max_switches_per_hour"], 2, "{held}");
    more_failed_probes(&d, 15);
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    assert_eq!(
        d.events("failover_deferred").len(),
        1,
        "said once\n{}",
        d.dump()
    );
    assert_eq!(w.dir.read_env(), Some(env_for("EU")));
    assert_eq!(w.restarts(), 2);
    d.finish();
}

#[test]
fn config_prints_the_time_budget_and_doubtful_settings() {
    let w = World::new(Mode::Up, true, true, true);
    let out = w
        .cmd("failback = \"auto\"\nfailback_after = \"10m\"\n", "")
        .sub(&["config"])
        .exits(0);
    for words in [
        "outage detected at worst",
        "switched at worst",
        "standby checks: a region counts as down at worst",
        "failback to EU at worst",
        "flap damping: at most 6 automatic switches an hour",
        "# warning: region_checks.timeout 400ms is not below region_checks.interval 100ms",
    ] {
        assert!(out.stdout.contains(words), "{words}\n{}", out.stdout);
    }
}

#[test]
fn switch_takes_a_region_or_unpin_not_both() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir)
        .sub(&["switch", "NAM"])
        .arg("--unpin")
        .exits(2);
    assert!(out.stderr.contains("--unpin"), "{out:#?}");
    assert_eq!(dir.read_env(), None);
    let out = Cmd::new(&dir).sub(&["switch"]).arg("--unpin").exits(0);
    assert!(out.stdout.contains("No region is pinned"), "{out:#?}");
}

#[test]
fn low_throughput_defers_the_failover_and_is_measured_only_when_one_is_due() {
    let w = World::new(Mode::Status(503), true, false, true);
    let download = FakeTunnel::start_with(&w.dir, Mode::Up, &[]);
    let d = w
        .cmd(
            "",
            &format!(
                "[network]\nthroughput_url = \"https://127.0.0.1:{}/10MB.bin\"\nmin_mbps = 100000\n",
                download.port()
            ),
        )
        .spawn_daemon();

    let first_failure = d.wait_for_event("probe_failed", WAIT);
    let measured = d.wait_for_event("throughput_measured", WAIT);
    let after = between(&first_failure, &measured);
    assert!(
        after >= Duration::from_secs(1),
        "measured {after:?} after the first failure"
    );
    assert!(measured["mbps"].as_f64().is_some(), "{measured}");
    let deferred = d.wait_for_event("failover_deferred", WAIT);
    assert_eq!(deferred["reason"], "low_throughput", "{deferred}");
    assert_eq!(deferred["to_region"], "NAM", "{deferred}");
    more_failed_probes(&d, 25);
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    let measurements = d.events("throughput_measured").len() as u64;
    let failed = d.events("probe_failed");
    let span = between(&first_failure, &failed[failed.len() - 1]);
    // measured again once per threshold (1 s here), not on every probe
    assert!(
        measurements <= span.as_secs() + 1 && failed.len() > 20,
        "{measurements} measurements, {} probes in {span:?}",
        failed.len()
    );
    assert_eq!(d.events("failover_deferred").len(), 1, "{}", d.dump());
    assert_eq!(w.dir.calls(), Vec::<String>::new());
    d.finish();
}
