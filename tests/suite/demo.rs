//! `failover-handler demo`, the README's first command: it runs by itself on loopback, fails
//! over, and ends within 30 s with a summary and exit 0, leaving nothing behind.

use crate::support::{Cmd, TestDir};
use std::time::{Duration, Instant};

#[test]
fn demo_fails_over_and_ends_by_itself_with_a_summary() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let started = Instant::now();
    let out = Cmd::bare(&dir)
        .sub(&["demo"])
        .env("TMPDIR", &tmp.display().to_string())
        .env("EXT_CLOUD_FAILOVER_LIST", "XX=not.used")
        .output_within(Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let text = &out.stdout;

    for line in [
        "Probe of cloud.nam.ext.com failed (status: HTTP 503)",
        "Probe of cloud.nam.ext.com failed (timeout: ",
        "Waited for 2s. Application restarting due to failure with Ext Cloud: cloud.nam.ext.com",
        "Re-starting application with the new region EU and cloud cloud.eu.ext.com.",
        "started app:stunnel: it read the env file and forwards 127.0.0.1:",
        "Probe of cloud.eu.ext.com ok in ",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    // One line a probe: no probe is told twice at the same moment.
    let mut probe_times: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Probe of "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let probes = probe_times.len();
    probe_times.dedup();
    assert_eq!(probe_times.len(), probes, "a probe told twice in\n{text}");
    // One switch, one duration.
    let failed_for = |prefix: &str| {
        let line = text
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"));
        let (_, rest) = line.split_once(" after ").unwrap();
        rest.to_owned()
    };
    assert_eq!(
        failed_for("Left region NAM"),
        failed_for("Switched from NAM"),
        "{text}"
    );
    let summary = text
        .split("\nSummary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in\n{text}"));
    for label in [
        "what failed   region NAM (cloud.nam.ext.com)",
        "detected      ",
        "outage timer  ",
        "moved to      region EU (cloud.eu.ext.com)",
        "env file      ",
        "restart       ",
        "recovered     ",
    ] {
        assert!(
            summary
                .lines()
                .any(|l| l.trim_start().starts_with(label.trim_end())),
            "no {label:?} line in the summary\n{summary}"
        );
    }
    assert!(
        summary.contains("it now reads: export EXT_CLOUD=cloud.eu.ext.com / export EXT_REGION=EU"),
        "{summary}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn demo_read_only_in_part_ends_early_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = Cmd::bare(&dir)
        .sub(&["demo"])
        .env("TMPDIR", &tmp.display().to_string())
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("failover-handler demo"), "{first}");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the demo kept running with nobody reading it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
