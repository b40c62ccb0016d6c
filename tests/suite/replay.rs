//! `replay`, as an operator asking "what would other settings have done?" meets it: a journal
//! recorded by the real daemon through a failover on loopback, replayed under the same
//! settings (the same decisions) and under longer thresholds (the failover later, or never);
//! bad input refused with one line naming the flag or the file.

use crate::support::{
    Cmd, Mode, Output, TestDir, in_region, rejects, timestamp, wait_for_probes, wait_until,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};

const WAIT: Duration = Duration::from_secs(15);

/// How long the recorded history runs on after NAM's first failure: past a 2 s threshold
/// and the replay's tolerance, short of 10 s.
const HISTORY: Duration = Duration::from_secs(3);

/// Records a journal: NAM answers, then fails with 503 until the daemon fails over to EU
/// (threshold 1 s) and for a while after. Returns the test dir and the journal's path.
fn recorded_failover() -> (TestDir, std::path::PathBuf) {
    let (dir, tunnel) = in_region("NAM");
    let mut d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    wait_for_probes(&tunnel, "NAM", 3);
    tunnel.set_region("NAM", Mode::Status(503));
    let began = d.wait_for_event("outage_started", WAIT);
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    wait_until(WAIT, "the history to run on", || {
        SystemTime::now() > timestamp(&began) + HISTORY
    });
    d.terminate();
    d.assert_log_contract();
    let journal = dir.state_dir().join("journal.jsonl");
    (dir, journal)
}

/// `replay --journal <journal>` with the daemon's own options and what `with` adds.
fn replay(dir: &TestDir, journal: &Path, with: impl FnOnce(Cmd) -> Cmd) -> Output {
    let cmd = Cmd::new(dir).sub(&["replay", "--journal", journal.to_str().unwrap()]);
    with(cmd).exits(0)
}

/// The first line of the side-by-side table that contains `text`.
fn row<'a>(out: &'a Output, text: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?}: {out:#?}"))
}

/// The first line starting with `prefix`.
fn line<'a>(out: &'a Output, prefix: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}: {out:#?}"))
}

fn last_line(out: &Output) -> &str {
    out.stdout.lines().last().unwrap_or_default()
}

/// The milliseconds of a humantime duration such as `1s 23ms`.
fn millis(text: &str) -> u128 {
    humantime::parse_duration(text.trim())
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .as_millis()
}

/// The two times to failover of the outage line of `region`: (recorded, replay).
fn times_to_failover<'a>(out: &'a Output, region: &str) -> (&'a str, &'a str) {
    let outage = line(out, &format!("  {region} from "));
    let (_, times) = outage.split_once("): ").unwrap();
    times.split_once(" | ").unwrap()
}

#[test]
fn a_recorded_failover_replays_the_same_and_later_or_never_under_longer_thresholds() {
    let (dir, journal) = recorded_failover();

    // The same settings: the same decisions, and nothing to show side by side.
    let same = replay(&dir, &journal, |cmd| cmd);
    assert_eq!(
        line(&same, "Settings: "),
        "Settings: order NAM,EU,APAC; interval 100ms, fail_interval 100ms, timeout 400ms, \
         threshold 1s; failback never; at most 6 switches an hour",
    );
    assert_eq!(
        line(&same, "Recorded with: "),
        "Recorded with: interval 100ms, threshold 1s"
    );
    let decisions = line(&same, "Decisions: ");
    assert!(
        decisions.starts_with("Decisions: 1 recorded, 1 in the replay ("),
        "{same:#?}"
    );
    assert!(
        decisions.ends_with("; within 200ms of each other they are the same"),
        "{same:#?}"
    );
    assert!(
        !same.stdout.lines().any(|l| l.starts_with("recorded ")),
        "{same:#?}"
    );
    // The replay sees NAM's first failure when the daemon saw it, and probes every 100 ms.
    let (recorded, replayed) = times_to_failover(&same, "NAM");
    assert!((1000..1500).contains(&millis(recorded)), "{same:#?}");
    assert_eq!(replayed, "1s", "{same:#?}");
    assert_eq!(last_line(&same), "same decisions", "{same:#?}");

    // A 2 s threshold: the same failover, a second later.
    let later = replay(&dir, &journal, |cmd| cmd.flag("--threshold", "2s"));
    let header = line(&later, "recorded ");
    assert!(header.ends_with(" | replay"), "{later:#?}");
    let (recorded, replayed) = row(&later, " | at another time: ")
        .split_once(" | at another time: ")
        .unwrap();
    assert!(
        recorded.contains(" failover NAM -> EU, failed for 1s"),
        "{later:#?}"
    );
    assert!(
        replayed.ends_with(" failover NAM -> EU, failed for 2s"),
        "{later:#?}"
    );
    let (_, replayed) = times_to_failover(&later, "NAM");
    assert_eq!(replayed, "2s", "{later:#?}");
    assert_eq!(last_line(&later), "1 decision differs", "{later:#?}");

    // A 10 s threshold: the history ends before it, so the failover would not have happened.
    let never = replay(&dir, &journal, |cmd| cmd.flag("--threshold", "10s"));
    let missing = row(&never, " | would not have happened");
    assert!(
        missing.contains(" failover NAM -> EU, failed for 1s"),
        "{never:#?}"
    );
    let (_, replayed) = times_to_failover(&never, "NAM");
    assert_eq!(replayed, "no failover", "{never:#?}");
    assert_eq!(last_line(&never), "1 decision differs", "{never:#?}");

    // The same for scripts.
    let json = replay(&dir, &journal, |cmd| {
        cmd.flag("--threshold", "10s").switch("--json")
    });
    let v: Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json:#?}"));
    let schema = crate::observability::schema("replay.json");
    crate::observability::assert_valid(&schema, "replay --json", &v);
    assert_eq!(v["same"], false, "{v}");
    assert_eq!(v["settings"]["threshold_ms"], 10_000, "{v}");
    let differences = v["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{v}");
    assert_eq!(differences[0]["how"], "not_made", "{v}");
    let recorded = &differences[0]["recorded"];
    assert_eq!(
        (
            &recorded["event"],
            &recorded["region"],
            &recorded["to_region"]
        ),
        (
            &Value::from("failover"),
            &Value::from("NAM"),
            &Value::from("EU")
        ),
        "{v}"
    );
    assert_eq!(v["replay"], Value::Array(Vec::new()), "{v}");
    assert_eq!(
        v["outages"][0]["replay_failover_after_ms"],
        Value::Null,
        "{v}"
    );
}

/// A journal holding `lines`, in the test dir.
fn journal_of(dir: &TestDir, lines: &str) -> String {
    let path = dir.write_file("journal.jsonl", lines);
    path.to_str().unwrap().to_owned()
}

const RECORD: &str = r#"{"timestamp":"2026-01-01T00:00:00.000Z","level":"INFO","event":"daemon_started","message":"started","region":"NAM","interval_ms":100,"threshold_ms":1000}"#;

cases! {
    rejects;
    replay_rejects_a_missing_journal: (
        &["replay"],
        &["--journal", "nothing-here.jsonl"],
        |_, cmd| cmd.arg("--journal").arg("nothing-here.jsonl"),
    );
    replay_strict_rejects_an_unparsable_line: (
        &["replay"],
        &["line 2"],
        |dir, cmd| {
            let path = journal_of(dir, &format!("{RECORD}\nnot json\n"));
            cmd.flag("--journal", &path).switch("--strict")
        },
    );
    replay_strict_rejects_a_line_past_the_cap: (
        &["replay"],
        &["line 2", "longer than 64 KiB"],
        |dir, cmd| {
            let long = "x".repeat(3 << 20);
            let path = journal_of(dir, &format!("{RECORD}\n{long}\n{RECORD}\n"));
            cmd.flag("--journal", &path).switch("--strict")
        },
    );
    replay_rejects_an_empty_journal: (
        &["replay"],
        &["holds no journal records"],
        |dir, cmd| cmd.flag("--journal", &journal_of(dir, "\n")),
    );
    replay_requires_a_journal: (&["replay"], &["--journal"], |_, cmd| cmd);
    replay_rejects_an_unparsable_threshold: (
        &["replay"],
        &["--threshold"],
        |dir, cmd| cmd.flag("--journal", &journal_of(dir, RECORD)).flag("--threshold", "soon"),
    );
    replay_rejects_an_unknown_failback: (
        &["replay"],
        &["--failback"],
        |dir, cmd| cmd.flag("--journal", &journal_of(dir, RECORD)).flag("--failback", "sometimes"),
    );
    replay_rejects_a_zero_max_switches: (
        &["replay"],
        &["--max-switches-per-hour"],
        |dir, cmd| cmd
            .flag("--journal", &journal_of(dir, RECORD))
            .flag("--max-switches-per-hour", "0"),
    );
}

/// A journal cut by a full disk: a torn record glued to the next one (line 2) and a line past
/// the length cap (line 3). Without `--strict`, `replay` names each line it skips on stderr
/// and replays the rest.
#[test]
fn replay_skips_a_torn_line_and_a_line_past_the_cap_and_names_them() {
    let dir = TestDir::new();
    let torn = &RECORD[..40];
    let long = "x".repeat(3 << 20);
    let path = journal_of(
        &dir,
        &format!("{RECORD}\n{torn}{RECORD}\n{long}\n{RECORD}\n"),
    );
    let out = Cmd::new(&dir).sub(&["replay", "--journal", &path]).exits(0);
    let skipped: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("skipped"))
        .collect();
    assert_eq!(skipped.len(), 2, "{out:#?}");
    assert!(
        skipped[0].contains(&format!("{path} line 2: not a journal record")),
        "{out:#?}"
    );
    assert!(
        skipped[1].contains(&format!("{path} line 3: longer than 64 KiB")),
        "{out:#?}"
    );
    assert!(out.stdout.contains("Decisions: "), "{out:#?}");
}
