//! One vocabulary: a scripted failover (outage, switch, restart, a recovery, a pause and its
//! end) and every decision it makes, under the same `event` name with the same level, message
//! and fields in the daemon's stdout, its journal, `/history` and the Datadog payload.

use serde_json::{Map, Value};
use std::sync::Mutex;
use std::time::Duration;

use crate::observe::{
    FAILOVER_DECISIONS, Intake, get_json, intake_stand_in, journal_lines, listening,
};
use crate::support::{Cmd, Mode, in_region_with, wait_until};

const WAIT: Duration = Duration::from_secs(15);

/// Keys every rendering wraps a decision in, each in its own way.
const ENVELOPE: [&str; 9] = [
    "timestamp",
    "service",
    "ddsource",
    "hostname",
    "ddtags",
    "format_version",
    "status",
    "level",
    "event",
];

/// The decisions the script makes beside those of the failover, each at least once.
const MORE_DECISIONS: [&str; 3] = ["daemon_started", "paused", "resumed"];

fn decisions() -> impl Iterator<Item = &'static str> {
    FAILOVER_DECISIONS.into_iter().chain(MORE_DECISIONS)
}

/// Every entry the intake stand-in received so far.
fn delivered(intake: &Mutex<Vec<Intake>>) -> Vec<Value> {
    intake
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.entries.clone())
        .collect()
}

/// The records named `event` in one rendering, in order.
fn named<'a>(records: &'a [Value], event: &str) -> Vec<&'a Map<String, Value>> {
    records
        .iter()
        .filter(|r| r["event"] == event)
        .filter_map(Value::as_object)
        .collect()
}

/// Asserts that `other` carries the journal record's level, message and every field, with
/// the same values.
#[track_caller]
fn same_decision(journal: &Map<String, Value>, other: &Map<String, Value>, rendering: &str) {
    for (key, value) in journal {
        if ENVELOPE.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            other.get(key),
            Some(value),
            "{rendering}: field {key} of {journal:?} differs in {other:?}"
        );
    }
    assert_eq!(
        journal.get("level"),
        other.get("level"),
        "{rendering}: {other:?}"
    );
}

#[test]
fn every_decision_is_one_event_in_stdout_the_journal_history_and_datadog() {
    let (url, intake) = intake_stand_in(vec![]);
    let (dir, tunnel) = in_region_with("NAM", Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .env("DD_API_KEY", "dd-test-key-vocabulary")
        .env("FAILOVER_HANDLER_DD_URL", &url)
        .spawn_daemon();
    let addr = listening(&d);

    // An outage that lasts: failover, switch, restart.
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    // An outage that does not: the new region fails, then answers again.
    tunnel.set_region("EU", Mode::Status(503));
    d.wait_for(
        |v| v["event"] == "outage_started" && v["region"] == "EU",
        WAIT,
    );
    tunnel.set_region("EU", Mode::Up);
    d.wait_for(
        |v| v["event"] == "outage_ended" && v["how"] == "recovered",
        WAIT,
    );
    // A pause and its end.
    Cmd::new(&dir).sub(&["pause"]).exits(0);
    d.wait_for_event("paused", WAIT);
    Cmd::new(&dir).sub(&["resume"]).exits(0);
    d.wait_for_event("resumed", WAIT);

    wait_until(WAIT, "every decision in /history", || {
        let history = get_json(&addr, "/history");
        let seen = history["decisions"].as_array().cloned().unwrap_or_default();
        decisions().all(|e| !named(&seen, e).is_empty())
    });
    let history = get_json(&addr, "/history")["decisions"]
        .as_array()
        .cloned()
        .unwrap();
    wait_until(WAIT, "every decision at the intake", || {
        let delivered = delivered(&intake);
        decisions().all(|e| !named(&delivered, e).is_empty())
    });
    let delivered = delivered(&intake);
    let stdout = d.json_lines();
    let journal = journal_lines(&dir);

    for event in decisions() {
        let in_journal = named(&journal, event);
        assert!(!in_journal.is_empty(), "{event} not in the journal");
        let renderings = [
            ("stdout", named(&stdout, event)),
            ("history", named(&history, event)),
            ("datadog", named(&delivered, event)),
        ];
        for (rendering, records) in renderings {
            assert_eq!(
                records.len(),
                in_journal.len(),
                "{event}: {} in the journal, {} in {rendering}",
                in_journal.len(),
                records.len()
            );
            for (j, other) in in_journal.iter().zip(&records) {
                same_decision(j, other, rendering);
            }
        }
    }
    // The old script's message is the failover decision's message everywhere.
    let failover = named(&journal, "failover")[0];
    assert!(
        failover["message"]
            .as_str()
            .unwrap()
            .starts_with("Waited for 1s. Application restarting due to failure with Ext Cloud: "),
        "{failover:?}"
    );
    d.finish();
}
