//! A healthy daemon at rest: nothing in the state dir is written while nothing changes, and
//! `status` still tells the truth from the status file.

use crate::support::{Cmd, FakeTunnel, TestDir, in_region, wait_for_probes, wait_until};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Every file of `dir` with what a write of it changes: size, inode (a rename), mtime.
fn files(dir: &Path) -> BTreeMap<String, (u64, u64, i64, i64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), m.ino(), m.mtime(), m.mtime_nsec()),
            )
        })
        .collect()
}

/// Waits until the status file says what the probes found (EU healthy), and 10 probes more.
fn settle(dir: &TestDir, tunnel: &FakeTunnel) {
    let status = dir.state_dir().join("status.json");
    wait_until(
        Duration::from_secs(10),
        "EU healthy in the status file",
        || {
            std::fs::read_to_string(&status)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|s| s["regions"].as_array().cloned())
                .is_some_and(|rs| rs.iter().any(|r| r["name"] == "EU" && r["healthy"] == true))
        },
    );
    wait_for_probes(tunnel, "EU", 10);
}

#[test]
fn a_healthy_daemon_writes_nothing_to_its_state_dir_between_probes() {
    let (dir, tunnel) = in_region("EU");
    let mut d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--interval", "20ms")
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    d.wait_for_event("daemon_started", Duration::from_secs(10));
    settle(&dir, &tunnel);
    let settled = files(&dir.state_dir());
    wait_for_probes(&tunnel, "EU", 100);
    assert_eq!(
        files(&dir.state_dir()),
        settled,
        "state dir written at rest"
    );

    // `status` from the file: healthy, the daemon alive, no age that stopped counting.
    let out = Cmd::new(&dir).sub(&["status"]).exits(0);
    assert!(out.stdout.contains("Daemon:        running"), "{out:#?}");
    assert!(out.stdout.contains("status.json"), "{out:#?}");
    assert!(out.stdout.contains("EU     healthy"), "{out:#?}");
    assert!(!out.stdout.contains(" ago"), "{out:#?}");
    d.terminate();
}

/// The names of a process's threads.
fn threads(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn a_healthy_daemon_runs_on_three_threads_even_at_a_20ms_interval() {
    three_threads_at_20ms(|tunnel| tunnel.url());
}

/// The default probe URL names `localhost`: it is loopback without a resolver's thread.
#[test]
fn a_daemon_probing_localhost_as_by_default_runs_on_three_threads() {
    three_threads_at_20ms(|tunnel| tunnel.url().replace("127.0.0.1", "localhost"));
}

fn three_threads_at_20ms(url: impl Fn(&FakeTunnel) -> String) {
    let (dir, tunnel) = in_region("EU");
    let mut d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--probe-url", &url(&tunnel))
        .flag("--interval", "20ms")
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    d.wait_for_event("daemon_started", Duration::from_secs(10));
    settle(&dir, &tunnel);
    // The start-up's file reads and writes are done: their threads end soon after.
    wait_until(Duration::from_secs(10), "at most 3 threads", || {
        threads(d.pid()).len() <= 3
    });
    // From then on, probe after probe: the runtime, the journal writer and the reporting thread.
    let target = tunnel.requests_in("EU") + 100;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut most = Vec::new();
    while tunnel.requests_in("EU") < target {
        assert!(std::time::Instant::now() < deadline, "100 probes in 30 s");
        let now = threads(d.pid());
        if now.len() > most.len() {
            most = now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(most.len() <= 3, "threads between probes: {most:?}");
    d.terminate();
}
