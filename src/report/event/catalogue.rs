//! The catalogue of events: one sample of every variant (a new variant adds its sample here),
//! checked against what the docs and the journal's schema say. Nothing else needs to know a
//! new event: its name, fields, record and log line are derived.

#[cfg(test)]
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::*;
use serde_json::Value;

fn p(r: &str) -> Place {
    Place {
        region: r.into(),
        cloud: format!("cloud.{}.ext.com", r.to_lowercase()),
    }
}

fn deferred(reason: DeferReason) -> Deferred {
    Deferred {
        at: p("EU"),
        failing_for: Some(Duration::from_secs(3)),
        reason,
    }
}

fn health(down: bool) -> Health {
    Health {
        region: Some("EU".into()),
        target: None,
        cloud: Some("cloud.eu.ext.com".into()),
        health: if down { "down" } else { "up" },
        error_kind: down.then_some("refused"),
        latency_ms: (!down).then_some(12),
        healthy_standbys: 1,
        what: "standby region EU (cloud.eu.ext.com)".into(),
        error: down.then(|| "refused".into()),
        none_left: false,
    }
}

/// One value of every variant, and of every reason a switch is held back for.
pub fn samples() -> Vec<Event> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let d = Duration::from_millis(1500);
    let s = |x: &str| x.to_string();
    let n = Event::Notice;
    let to = Some(p("NAM"));
    vec![
        Event::DaemonStarted {
            at: p("EU"),
            order: vec![s("EU"), s("NAM")],
            probe_url: s("https://u:pw@localhost:8443/x?token=t"),
            interval: d,
            threshold: d,
            dry_run: false,
            env_file_written: true,
        },
        Event::DaemonStopped { at: p("EU") },
        Event::OutageStarted {
            at: p("EU"),
            error_kind: "status",
            http_status: Some(503),
            error: s("status: HTTP 503"),
        },
        Event::ProbeChanged {
            at: p("EU"),
            outcome: "failure",
            error_kind: Some("status"),
        },
        Event::OutageEnded {
            at: p("EU"),
            recovered: true,
            failed_for: d,
        },
        Event::Failover {
            from: p("EU"),
            to: p("NAM"),
            failed_for: d,
            threshold: d,
            tunnel: Some(s("127.0.0.1:8443")),
        },
        Event::TunnelRestart {
            at: p("EU"),
            tunnel: s("127.0.0.1:8443"),
            failed_for: d,
        },
        Event::Failback {
            from: p("NAM"),
            to: p("EU"),
            healthy_for: d,
        },
        Event::Adopted {
            from: p("EU"),
            to: p("NAM"),
        },
        Event::FailoverHeld {
            from: p("EU"),
            to: p("NAM"),
            failed_for: d,
            pause: s("for 1h"),
            pause_until: Some(t),
        },
        Event::Switch {
            from: p("EU"),
            to: p("NAM"),
            reason: SwitchReason::Outage,
            failed_for: Some(d),
        },
        Event::Restarting {
            at: p("NAM"),
            reason: SwitchReason::Outage,
        },
        Event::RestartDone {
            region: s("NAM"),
            took: d,
            failed_calls: 0,
        },
        Event::RestartInterrupted {
            region: s("NAM"),
            stopped: vec![s("application")],
        },
        Event::RestartGaveUp {
            region: s("NAM"),
            error: s("FATAL"),
        },
        Event::RestartResumed { region: s("NAM") },
        Event::RestartNotResumed { region: s("NAM") },
        Event::Paused {
            since: t,
            until: None,
            describe: s("until resumed"),
        },
        Event::Resumed { how: "resume" },
        Event::PauseEnded { how: "expired" },
        Event::Pinned {
            region: s("NAM"),
            source: "switch",
        },
        Event::Unpinned {
            region: s("NAM"),
            reason: "unpin",
        },
        Event::FleetStoreLost {
            region: s("EU"),
            error: s("timeout"),
            local: false,
        },
        Event::FleetStoreBack { region: s("EU") },
        Event::FleetLeader {
            host: s("h1"),
            fleet: s("f"),
        },
        Event::FleetMoved {
            from: s("EU"),
            to: s("NAM"),
            epoch: 2,
            outage: 2,
            voters: 3,
        },
        Event::CertExpiring {
            at: p("EU"),
            not_after: t,
            left: Duration::from_secs(3600),
        },
        Event::TunnelMisconfigured {
            at: p("EU"),
            error: s("bad certificate"),
        },
        Event::FailoverDeferred(deferred(DeferReason::AllRegionsDown {
            healthy_standbys: 0,
        })),
        Event::FailoverDeferred(deferred(DeferReason::HostNetwork {
            references: vec![s("tcp://127.0.0.1:1")],
        })),
        Event::FailoverDeferred(deferred(DeferReason::LowThroughput {
            to: to.clone(),
            mbps: Some(0.5),
            min_mbps: 2.0,
            next_measure_in: d,
        })),
        Event::FailoverDeferred(deferred(DeferReason::TunnelDown)),
        Event::FailbackDeferred(deferred(DeferReason::Damped {
            cause: "failback",
            to,
            next_allowed_in: d,
            switches_last_hour: 6,
            max_switches_per_hour: 6,
        })),
        Event::FailbackDeferred(deferred(DeferReason::Paused { cause: "failback" })),
        n(Notice::ProbeOk {
            at: p("EU"),
            latency_ms: 5,
            http_status: 200,
        }),
        n(Notice::ProbeFailed {
            at: p("EU"),
            error_kind: "status",
            http_status: Some(503),
            latency_ms: 5,
            failing_for: Some(d),
            threshold: d,
            error: s("status: HTTP 503"),
        }),
        n(Notice::RestartSkipped { in_place: false }),
        n(Notice::DryRun {
            at: p("NAM"),
            path: s("/etc/ext_cloud.env"),
        }),
        n(Notice::EnvFileWritten {
            at: p("NAM"),
            path: s("/etc/ext_cloud.env"),
        }),
        n(Notice::EnvFileCurrent {
            at: p("NAM"),
            path: s("/etc/ext_cloud.env"),
        }),
        n(Notice::EnvFileWriteFailed {
            region: s("NAM"),
            error_kind: "write",
            failures: 2,
            error: s("cannot write"),
            then: s("retrying"),
        }),
        n(Notice::EnvFileWriteRetried {
            region: s("NAM"),
            error_kind: "write",
            error: s("cannot write"),
        }),
        n(Notice::EnvFileWriteRecovered {
            failures: 2,
            path: s("/etc/ext_cloud.env"),
            over: d,
        }),
        n(Notice::StaleTempRemoved {
            count: 1,
            path: s("/etc/ext_cloud.env"),
        }),
        n(Notice::EnvFileUnreadable {
            error_kind: "read",
            error: s("cannot read"),
        }),
        n(Notice::EnvFileUnknownRegion { region: s("MARS") }),
        n(Notice::EnvFileUnrecognised {
            path: s("/etc/ext_cloud.env"),
        }),
        n(Notice::EnvFileInconsistent {
            region: s("EU"),
            cloud: s("cloud.nam.ext.com"),
            path: s("/etc/ext_cloud.env"),
            own_cloud: s("cloud.eu.ext.com"),
        }),
        n(Notice::EnvFileRestored {
            region: s("EU"),
            path: s("/etc/ext_cloud.env"),
            why: s("is missing"),
        }),
        n(Notice::PreferredChanged {
            region: s("EU"),
            previous_region: s("NAM"),
        }),
        n(Notice::OutageResumed {
            region: s("EU"),
            failing_for: d,
            gap: d,
        }),
        n(Notice::OutageForgotten {
            region: s("EU"),
            gap: d,
        }),
        n(Notice::StateUnreadable {
            file: "handler.json",
            error: s("bad json"),
        }),
        n(Notice::StateWriteFailed {
            error: s("read-only"),
            doing: "update the pin in the state directory",
        }),
        n(Notice::PinUnknownRegion { region: s("MARS") }),
        n(Notice::PinKept { region: s("EU") }),
        n(Notice::ConfigWarning {
            warning: s("--insecure"),
        }),
        n(Notice::ConfigReloadRefused {
            error_kind: "config",
            error: s("bad"),
        }),
        n(Notice::ConfigReloaded {
            applied: s("probe.interval"),
            needs_restart: String::new(),
            said: s("applied probe.interval"),
        }),
        n(Notice::SignalIgnored { signal: "SIGUSR1" }),
        n(Notice::DaemonUnlisted {
            path: s("/run/failover-handler"),
            error: s("denied"),
        }),
        Event::Standby(Standby::RegionHealth(health(true))),
        Event::Standby(Standby::ReferenceHealth(Health {
            region: None,
            target: Some(s("tcp://127.0.0.1:1")),
            cloud: None,
            what: s("reference tcp://127.0.0.1:1"),
            ..health(false)
        })),
        Event::Standby(Standby::ThroughputMeasured {
            mbps: 12.5,
            min_mbps: 2.0,
            bytes: 1000,
            took: d,
            url: s("https://u:pw@localhost/big?k=v"),
        }),
        Event::Standby(Standby::ThroughputFailed {
            error_kind: "timeout",
            min_mbps: 2.0,
            url: s("https://localhost/big"),
            error: s("timeout"),
        }),
        Event::Standby(Standby::LatencyFileFailed {
            path: s("/tmp/latency.txt"),
            error: s("denied"),
        }),
        Event::Standby(Standby::LatencyFileOk {
            path: s("/tmp/latency.txt"),
        }),
        Event::Command(Command::SwitchWaiting {
            region: s("NAM"),
            lock: s("/etc/.ext_cloud.env.switch"),
            env_file: s("/etc/ext_cloud.env"),
        }),
        Event::Command(Command::ManualSwitch {
            at: p("NAM"),
            previous_region: Some(s("EU")),
            path: s("/etc/ext_cloud.env"),
        }),
        Event::Command(Command::PauseRequested {
            until: Some(t),
            describe: s("for 1h"),
        }),
        Event::Command(Command::ResumeRequested {}),
        Event::Command(Command::Pinned {
            region: s("NAM"),
            source: "switch",
        }),
        Event::Command(Command::Unpinned {
            region: s("NAM"),
            reason: "unpin",
        }),
        Event::FleetReseeded {
            region: s("NAM"),
            epoch: 8,
        },
        Event::FleetMoveDamped {
            from: s("EU"),
            to: s("NAM"),
            epoch: 7,
            next_allowed_in: Duration::from_secs(600),
            recent_moves: 3,
        },
        Event::FleetHostTaken {
            host: s("web-1"),
            holder: s("4f1c2a"),
            wait: Duration::from_secs(10),
            former: false,
        },
        Event::FleetMovePaused {
            from: s("EU"),
            to: s("NAM"),
            epoch: 3,
            paused: s("paused by h0 at 2026-12-03T18:00:00Z"),
        },
        Event::FleetPaused {
            paused: s("paused by h0 at 2026-12-03T18:00:00Z"),
        },
        Event::FleetResumed {},
        Event::FleetRegionUnknown { region: s("LATAM") },
        Event::RestartQueued {
            max_concurrent_restarts: 2,
        },
        Event::RestartLeaseLost {
            region: s("NAM"),
            step: s("start app:application"),
            stopped: vec![s("app:cloud-client")],
        },
        Event::Command(Command::SwitchMarkFailed {
            region: s("NAM"),
            error: s("No space left on device (os error 28)"),
            dir: s("/var/lib/failover-handler"),
        }),
        Event::SwitchRestartBegan {
            region: s("NAM"),
            pid: 4242,
        },
        Event::SwitchRestartEnded {
            region: s("NAM"),
            pid: 4242,
            how: "done",
            took: Duration::from_millis(2300),
        },
        Event::Steps(Steps::RestartPath {
            via: crate::config::Via::Xmlrpc,
            reason: "configured",
            detail: s("restart.via = \"xmlrpc\""),
            serverurl: Some(s("unix:///run/supervisor.sock")),
        }),
        Event::Steps(Steps::RestartStep {
            program: s("app:application"),
            action: crate::adapters::supervisor::Action::Start,
            via: "XML-RPC",
        }),
        Event::Steps(Steps::failed(
            s("app:application"),
            crate::adapters::supervisor::Action::Stop,
            "supervisorctl",
            2,
            &crate::adapters::supervisor::CallError::Exit {
                code: Some(3),
                signal: None,
                output: s("app:application: ERROR (spawn error)"),
            },
            crate::adapters::supervisor::Next::Retry(Duration::from_millis(1500)),
        )),
        Event::Steps(Steps::StateDirUnavailable {
            path: s("/var/lib/failover-handler"),
            error: s("Permission denied (os error 13)"),
        }),
    ]
}

fn read(path: &str) -> String {
    let at = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display()))
}

#[test]
fn every_event_is_named_in_the_docs() {
    let docs = [
        "README.md",
        "docs/observe.md",
        "docs/regions.md",
        "docs/fleet.md",
    ]
    .map(read)
    .join("\n");
    for e in samples() {
        let name = e.name();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{e:?}: {name:?}"
        );
        assert!(
            docs.contains(&format!("`{name}`")),
            "{name} is in no event table"
        );
    }
}

#[test]
fn the_journal_schema_lists_exactly_the_journaled_events() {
    let schema: Value = serde_json::from_str(&read("docs/schemas/journal-record.json")).unwrap();
    let listed: BTreeSet<String> = schema["properties"]["event"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let journaled: BTreeSet<String> = samples()
        .iter()
        .filter(|e| e.journaled())
        .map(Event::name)
        .collect();
    assert_eq!(journaled, listed);
}

#[test]
fn a_record_is_the_variant_with_its_message_and_level() {
    for e in samples() {
        let r = e.record(SystemTime::UNIX_EPOCH);
        assert_eq!(r.event, e.name());
        assert_eq!(r.level, e.level().as_str());
        assert!(!r.message.is_empty(), "{e:?}");
        assert_eq!(r.fields, e.fields());
        assert!(!r.fields.contains_key("event"), "{e:?}");
        assert!(r.fields.values().all(|v| !v.is_null()), "{e:?}");
        for (key, value) in &r.fields {
            let shown = value.to_string();
            assert!(
                !shown.contains("pw@") && !shown.contains("k=v"),
                "{key} shows a secret: {shown}"
            );
        }
    }
}

#[test]
fn fields_are_rendered_as_before() {
    let named = |name: &str, fields: &str| {
        let e = samples()
            .into_iter()
            .find(|e| e.name() == name)
            .unwrap_or_else(|| panic!("no sample of {name}"));
        assert_eq!(Value::Object(e.fields()).to_string(), fields, "{name}");
    };
    named(
        "failover",
        r#"{"cloud":"cloud.eu.ext.com","error_kind":"tunnel_down","failed_for_ms":1500,"reason":"outage","region":"EU","to_cloud":"cloud.nam.ext.com","to_region":"NAM","tunnel":"127.0.0.1:8443"}"#,
    );
    named(
        "daemon_started",
        &format!(
            r#"{{"cloud":"cloud.eu.ext.com","dry_run":false,"env_file_written":true,"interval_ms":1500,"order":"EU,NAM","probe_url":"https://***@localhost:8443/x?token=***","region":"EU","threshold_ms":1500,"version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
    );
    named(
        "failover_held",
        r#"{"cloud":"cloud.eu.ext.com","failed_for_ms":1500,"pause_until":"2027-01-15T08:00:00.000Z","reason":"paused","region":"EU","to_cloud":"cloud.nam.ext.com","to_region":"NAM"}"#,
    );
    named(
        "failover_deferred",
        r#"{"cloud":"cloud.eu.ext.com","failing_for_ms":3000,"healthy_standbys":0,"reason":"all_regions_down","region":"EU"}"#,
    );
    named("pause_ended", r#"{"how":"expired"}"#);
}
