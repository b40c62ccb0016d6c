//! Fleet mode as users run it: five handlers, each with its own env file, recording
//! supervisorctl and tunnel, keep one region through a real three-member etcd cluster on
//! 127.0.0.1 (probe every 100 ms, outage threshold 1 s, leases of 3 s).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::support::etcd::{Cutter, EtcdCluster, free_port};
use crate::support::{
    Cmd, Daemon, FakeTunnel, HeavySlot, Mode, TestDir, assert_fields, text as text_of, timestamp,
    wait_until,
};

const HOSTS: usize = 5;
const THRESHOLD: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_millis(100);
const LEASE: Duration = Duration::from_secs(3);

/// One handler of the fleet: its dir (env file, stand-in), its tunnel, its process.
struct Host {
    dir: TestDir,
    tunnel: FakeTunnel,
    cmd: Cmd,
    daemon: Option<Daemon>,
    killed: Option<SystemTime>,
}

impl Host {
    fn region(&self) -> Option<String> {
        let env = self.dir.read_env()?;
        env.lines()
            .find_map(|l| l.strip_prefix("export EXT_REGION="))
            .map(str::to_owned)
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.daemon.as_ref().map_or(Vec::new(), |d| d.events(name))
    }

    /// SIGKILL: no clean stop, its lease runs out by itself.
    fn kill(&mut self) {
        if let Some(d) = &self.daemon {
            let _ = std::process::Command::new("kill")
                .args(["-9", &d.pid().to_string()])
                .status();
        }
        self.killed = Some(SystemTime::now());
    }

    fn start(&mut self) {
        let d = self.cmd.spawn_daemon();
        d.wait_for_event("daemon_started", Duration::from_secs(10));
        self.daemon = Some(d);
    }

    /// Probes of `region` fail on this host only.
    fn fail(&self, region: &str) {
        self.tunnel.set_region(region, Mode::Status(503));
    }
}

struct Fleet {
    cluster: EtcdCluster,
    hosts: Vec<Host>,
    name: String,
    _slot: HeavySlot,
}

/// The `endpoints` value of host `i` in the cluster.
type Endpoints = Box<dyn Fn(usize, &EtcdCluster) -> String>;

/// How a test's fleet is set up.
struct Setup {
    /// Config text of host `i` before `[fleet]` (regions, checks).
    before: Box<dyn Fn(usize) -> String>,
    max_concurrent_restarts: u32,
    /// Seconds each supervisorctl call takes.
    slow_restart: Option<f64>,
    /// Endpoints of host `i`, instead of the cluster's.
    endpoints: Endpoints,
    /// A host with `on_store_loss = "local"`.
    local: Option<usize>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            before: Box::new(|_| String::new()),
            max_concurrent_restarts: 2,
            slow_restart: Some(0.05),
            endpoints: Box::new(|_, c| c.endpoints_toml()),
            local: None,
        }
    }
}

impl Fleet {
    /// The cluster and `HOSTS` handlers on EU, settled: a leader and `active` = EU.
    fn start(setup: Setup) -> Fleet {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let slot = HeavySlot::take();
        let cluster = EtcdCluster::start(3);
        let name = format!(
            "t{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let hosts = (0..HOSTS)
            .map(|i| {
                let dir = TestDir::with_env("EU");
                let tunnel = FakeTunnel::start(&dir);
                let text = format!(
                    "{}[fleet]\nendpoints = {}\nname = \"{name}\"\nhost = \"h{i}\"\n\
                     min_voters = 2\nmax_concurrent_restarts = {}\nlease_ttl = \"{}s\"\n\
                     on_store_loss = \"{}\"\n",
                    (setup.before)(i),
                    (setup.endpoints)(i, &cluster),
                    setup.max_concurrent_restarts,
                    LEASE.as_secs(),
                    if setup.local == Some(i) {
                        "local"
                    } else {
                        "keep"
                    }
                );
                let config = dir.write_file("fleet.toml", &text);
                let mut cmd = Cmd::new(&dir)
                    .tunnel_in(&tunnel, "EU")
                    .flag("--config", config.to_str().unwrap());
                if let Some(secs) = setup.slow_restart {
                    let slow = timed_supervisorctl(&dir, secs);
                    cmd = cmd.flag("--supervisorctl", slow.to_str().unwrap());
                }
                Host {
                    dir,
                    tunnel,
                    cmd,
                    daemon: None,
                    killed: None,
                }
            })
            .collect();
        let mut fleet = Fleet {
            cluster,
            hosts,
            name,
            _slot: slot,
        };
        for h in &mut fleet.hosts {
            h.start();
        }
        wait_until(Duration::from_secs(10), "a leader and active = EU", || {
            fleet.key("leader").is_some()
                && fleet.key("active").is_some_and(|a| a.contains("\"EU\""))
                && fleet.keys("views/").len() == HOSTS
        });
        fleet
    }

    fn keys(&self, under: &str) -> Vec<(String, String)> {
        self.cluster
            .range(&format!("/failover-handler/{}/{under}", self.name))
    }

    fn key(&self, name: &str) -> Option<String> {
        let full = format!("/failover-handler/{}/{name}", self.name);
        self.keys(name)
            .into_iter()
            .find(|(k, _)| *k == full)
            .map(|(_, v)| v)
    }

    fn leader(&self) -> usize {
        let host = self.key("leader").expect("a leader");
        host.trim_start_matches('h').parse().unwrap()
    }

    fn regions(&self) -> Vec<Option<String>> {
        self.hosts.iter().map(Host::region).collect()
    }

    fn all_on(&self, region: &str) -> bool {
        self.hosts
            .iter()
            .filter(|h| h.daemon.is_some() && h.killed.is_none())
            .all(|h| h.region().as_deref() == Some(region))
    }

    /// Waits until every running host has probed `n` more times: `n` intervals of the fleet
    /// living through what the test set up, however loaded the machine.
    fn probes_pass(&self, n: usize) {
        let running: Vec<&Host> = self
            .hosts
            .iter()
            .filter(|h| h.daemon.is_some() && h.killed.is_none())
            .collect();
        let before: Vec<usize> = running.iter().map(|h| h.tunnel.request_count()).collect();
        wait_until(
            Duration::from_secs(60),
            &format!("{n} more probes on every host"),
            || {
                running
                    .iter()
                    .zip(&before)
                    .all(|(h, b)| h.tunnel.request_count() >= b + n)
            },
        );
    }

    fn moves(&self) -> Vec<Value> {
        self.hosts
            .iter()
            .flat_map(|h| h.events("fleet_moved"))
            .collect()
    }

    /// Restarts other than at start, as (start, end) in wall time, over every host.
    fn restarts(&self) -> Vec<(SystemTime, SystemTime)> {
        let mut spans = Vec::new();
        for h in &self.hosts {
            let starts: Vec<SystemTime> = h
                .events("restarting")
                .iter()
                .filter(|e| e["reason"] != "start")
                .map(timestamp)
                .collect();
            let ends: Vec<SystemTime> = h.events("restart_done").iter().map(timestamp).collect();
            for (i, s) in starts.iter().enumerate() {
                let end = ends.get(i).copied().or(h.killed);
                spans.push((*s, end.unwrap_or_else(SystemTime::now)));
            }
        }
        spans
    }

    fn dump(&self) -> String {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "--- h{i}: {:?}\n{}",
                    h.region(),
                    h.daemon.as_ref().map_or(String::new(), Daemon::dump)
                )
            })
            .collect()
    }
}

/// A supervisorctl stand-in that records each call like the default one, and the wall time
/// each call began and ended (in `timed.log`), then sleeps `secs`.
fn timed_supervisorctl(dir: &TestDir, secs: f64) -> std::path::PathBuf {
    let calls = dir.path().join("supervisorctl.log");
    let timed = dir.path().join("timed.log");
    dir.write_script(
        "timed-supervisorctl",
        &format!(
            "echo \"B $(date +%s.%N) $*\" >> '{t}'\necho \"$*\" >> '{c}'\nsleep {secs}\n\
             echo \"E $(date +%s.%N) $*\" >> '{t}'",
            t = timed.display(),
            c = calls.display()
        ),
    )
}

/// Every restart of `dir`'s programs as supervisorctl saw it: from the beginning of its first
/// stop to the end of its last start (six calls each), in wall time.
fn restart_spans(dir: &TestDir) -> Vec<(SystemTime, SystemTime)> {
    let text = std::fs::read_to_string(dir.path().join("timed.log")).unwrap_or_default();
    let at = |line: &str| {
        let secs: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        std::time::UNIX_EPOCH + Duration::from_secs_f64(secs)
    };
    let begins: Vec<SystemTime> = text
        .lines()
        .filter(|l| l.starts_with("B "))
        .map(at)
        .collect();
    let ends: Vec<SystemTime> = text
        .lines()
        .filter(|l| l.starts_with("E "))
        .map(at)
        .collect();
    begins
        .chunks_exact(6)
        .zip(ends.chunks_exact(6))
        .map(|(b, e)| (b[0], *e.last().unwrap()))
        .collect()
}

/// The most restarts running at the same moment.
fn peak(spans: &[(SystemTime, SystemTime)]) -> usize {
    spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn one_host_alone_moves_nothing_three_of_five_move_all_once_and_restarts_are_capped() {
    let fleet = Fleet::start(Setup::default());
    // 1) One host's probes fail: its view only. Nothing moves anywhere.
    fleet.hosts[0].fail("EU");
    fleet.hosts[0]
        .daemon()
        .wait_for_event("outage_started", Duration::from_secs(5));
    fleet.probes_pass(30);
    assert!(
        fleet.key("views/h0").unwrap().contains("\"outage\""),
        "{}",
        fleet.dump()
    );
    assert!(
        fleet.all_on("EU"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    assert!(fleet.moves().is_empty(), "{}", fleet.dump());
    // 2) Three of five see the outage: all five move once, to the same region, in time.
    let started = Instant::now();
    fleet.hosts[1].fail("EU");
    fleet.hosts[2].fail("EU");
    // A deadline for a hung fleet, not a speed goal: the time taken is printed, and measured
    // by the fleet benchmark and the chaos run (a loaded machine stretches every restart).
    wait_until(Duration::from_secs(30), "all five on NAM", || {
        fleet.all_on("NAM")
    });
    let took = started.elapsed();
    fleet.probes_pass(20);
    assert!(
        fleet.all_on("NAM"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    let moves = fleet.moves();
    assert_eq!(moves.len(), 1, "{}", fleet.dump());
    assert_eq!(moves[0]["to_region"], "NAM");
    assert!(fleet.key("active").unwrap().contains("\"epoch\":2"));
    for h in &fleet.hosts {
        let switches = h.events("switch");
        assert_eq!(switches.len(), 1, "{}", fleet.dump());
        assert_eq!(
            h.dir.calls().len(),
            6,
            "one restart each: {:?}",
            h.dir.calls()
        );
    }
    let spans = fleet.restarts();
    assert_eq!(spans.len(), HOSTS);
    assert!(peak(&spans) <= 2, "{spans:?}");
    println!("converged in {took:?}");
}

#[test]
fn a_lost_store_keeps_every_region_and_is_said_once() {
    // Host 4 alone says `on_store_loss = "local"`.
    let mut fleet = Fleet::start(Setup {
        local: Some(4),
        ..Setup::default()
    });
    // 4) etcd loses its quorum (2 of 3 members killed) during an outage seen by all.
    let cut = SystemTime::now();
    fleet.cluster.kill(0);
    fleet.cluster.kill(1);
    for h in &fleet.hosts {
        h.fail("EU");
    }
    // The store is lost only after two leases of silence (an etcd election is no loss).
    let local = &fleet.hosts[4];
    local
        .daemon()
        .wait_for_event("failover", 2 * LEASE + Duration::from_secs(15));
    for h in &fleet.hosts {
        let lost = h
            .daemon()
            .wait_for_event("fleet_store_lost", Duration::from_secs(5));
        let after = timestamp(&lost).duration_since(cut).unwrap_or_default();
        assert!(after >= 2 * LEASE, "lost after {after:?}\n{}", fleet.dump());
    }
    fleet.probes_pass(50);
    let keep = &fleet.hosts[..4];
    assert!(
        keep.iter().all(|h| h.region().as_deref() == Some("EU")),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    for h in keep {
        let lost = h.events("fleet_store_lost");
        assert_eq!(lost.len(), 1, "{}", fleet.dump());
        assert_eq!(lost[0]["on_store_loss"], "keep");
        assert!(h.events("switch").is_empty(), "{}", fleet.dump());
        assert!(h.dir.calls().is_empty());
    }
    // The local host follows its own rules: its own failover to NAM.
    let local = &fleet.hosts[4];
    assert_eq!(
        local.events("fleet_store_lost")[0]["on_store_loss"],
        "local"
    );
    assert_eq!(local.region().as_deref(), Some("NAM"), "{}", fleet.dump());
    assert_eq!(local.events("failover").len(), 1, "{}", fleet.dump());
}

#[test]
fn fleet_settings_are_validated_by_key_and_shown_without_credentials() {
    let dir = TestDir::with_env("EU");
    let bad = dir.write_file(
        "bad.toml",
        "[fleet]\nendpoints = [\"http://127.0.0.1:1\"]\nname = \"pay\"\nquorum = 2\n",
    );
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--config", bad.to_str().unwrap())
        .exits(2);
    assert!(out.stderr.contains("fleet.quorum"), "{out:?}");
    // A zero quorum would let one host of five move the fleet: refused, by the daemon too.
    let zero = dir.write_file(
        "zero.toml",
        "[fleet]\nendpoints = [\"http://127.0.0.1:1\"]\nname = \"pay\"\nquorum = 0\n",
    );
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--config", zero.to_str().unwrap())
        .exits(2);
    assert!(
        out.stderr.contains("fleet.quorum") && out.stderr.contains("more than 0"),
        "{out:?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    let out = Cmd::new(&dir)
        .flag("--config", zero.to_str().unwrap())
        .exits(2);
    assert!(out.stderr.contains("fleet.quorum"), "{out:?}");
    let good = dir.write_file(
        "good.toml",
        "[fleet]\nendpoints = [\"http://127.0.0.1:1\"]\nname = \"pay\"\nhost = \"web-1\"\n",
    );
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--config", good.to_str().unwrap())
        .env("FAILOVER_HANDLER_ETCD_USER", "root")
        .env("FAILOVER_HANDLER_ETCD_PASSWORD", "hunter2")
        .exits(0);
    assert!(out.stdout.contains("[fleet]"), "{out:?}");
    assert!(out.stdout.contains("host = \"web-1\""), "{out:?}");
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    // Without [fleet], --fleet is a usage error that says what is missing.
    let out = Cmd::new(&dir).sub(&["status", "--fleet"]).exits(2);
    assert!(out.stderr.contains("[fleet]"), "{out:?}");
}

#[test]
fn without_a_fleet_section_nothing_connects_to_a_store() {
    // 10) A listener on etcd's port records zero connections.
    let listener = TcpListener::bind("127.0.0.1:2379")
        .or_else(|_| TcpListener::bind(("127.0.0.1", free_port())))
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let watcher = std::thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            if listener.accept().is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("EU", Mode::Status(503))]);
    let daemon = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();
    daemon.wait_for_event("switch", Duration::from_secs(10));
    let probes = tunnel.request_count();
    wait_until(Duration::from_secs(10), "five more probes", || {
        tunnel.request_count() >= probes + 5
    });
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(accepted.load(Ordering::Relaxed), 0, "port {port}");
}

#[test]
fn every_region_down_moves_nobody() {
    // 3) Every host sees EU fail and every standby down (their health ports refuse).
    let (nam, apac) = (free_port(), free_port());
    let before = format!(
        "[[regions]]\nname = \"EU\"\ncloud = \"{}\"\n\
         [[regions]]\nname = \"NAM\"\ncloud = \"{}\"\nhealth_url = \"tcp://127.0.0.1:{nam}\"\n\
         [[regions]]\nname = \"APAC\"\ncloud = \"{}\"\nhealth_url = \"tcp://127.0.0.1:{apac}\"\n\
         [region_checks]\ninterval = \"100ms\"\ntimeout = \"400ms\"\nrise = 2\nfall = 2\n",
        crate::support::cloud_of("EU"),
        crate::support::cloud_of("NAM"),
        crate::support::cloud_of("APAC"),
    );
    let fleet = Fleet::start(Setup {
        before: Box::new(move |_| before.clone()),
        ..Setup::default()
    });
    for h in &fleet.hosts {
        h.fail("EU");
    }
    wait_until(
        Duration::from_secs(5),
        "every host to report the outage",
        || {
            fleet
                .keys("views/")
                .iter()
                .filter(|(_, v)| v.contains("\"outage\""))
                .count()
                == HOSTS
        },
    );
    fleet.probes_pass(20);
    assert!(
        fleet.all_on("EU"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    assert!(fleet.moves().is_empty(), "{}", fleet.dump());
    let views = fleet.keys("views/");
    assert!(
        views
            .iter()
            .all(|(_, v)| v.contains("\"NAM\":false") && v.contains("\"APAC\":false")),
        "{views:?}"
    );
}

#[test]
fn the_decision_survives_the_etcd_leader_and_the_handler_leader_dying() {
    let mut fleet = Fleet::start(Setup::default());
    let leader = fleet.leader();
    // Three hosts other than the leader see the outage.
    let failing: Vec<usize> = (0..HOSTS).filter(|&i| i != leader).take(3).collect();
    for &i in &failing {
        fleet.hosts[i].fail("EU");
    }
    // 5) Mid-outage, the etcd member that leads the cluster dies; 6) just before the
    // threshold, the handler that leads the fleet is SIGKILLed.
    std::thread::sleep(THRESHOLD / 2);
    let member = fleet.cluster.leader().expect("an etcd leader");
    fleet.cluster.kill(member);
    std::thread::sleep(THRESHOLD / 2 - Duration::from_millis(100));
    fleet.hosts[leader].kill();
    wait_until(
        THRESHOLD + LEASE + Duration::from_secs(6),
        "the live hosts on NAM",
        || fleet.all_on("NAM"),
    );
    fleet.probes_pass(10);
    assert_eq!(fleet.moves().len(), 1, "{}", fleet.dump());
    let active = fleet.key("active").unwrap();
    assert!(active.contains("\"epoch\":2"), "{active}");
    for (i, h) in fleet.hosts.iter().enumerate() {
        if i != leader {
            assert_eq!(h.events("switch").len(), 1, "{}", fleet.dump());
        }
    }
}

#[test]
fn a_host_cut_off_from_the_store_catches_up_when_it_returns() {
    // 7) Host 4 reaches etcd through forwarders that can cut it off.
    let cutters = std::sync::Mutex::new(Vec::new());
    let shared = Arc::new(cutters);
    let made = shared.clone();
    let fleet = Fleet::start(Setup {
        endpoints: Box::new(move |i, c| {
            if i != 4 {
                return c.endpoints_toml();
            }
            let mut made = made.lock().unwrap();
            let urls: Vec<String> = c
                .endpoints()
                .iter()
                .map(|e| {
                    let cutter = Cutter::new(e);
                    let url = format!("\"{}\"", cutter.url());
                    made.push(cutter);
                    url
                })
                .collect();
            format!("[{}]", urls.join(", "))
        }),
        ..Setup::default()
    });
    for c in shared.lock().unwrap().iter() {
        c.set_cut(true);
    }
    fleet.hosts[4]
        .daemon()
        .wait_for_event("fleet_store_lost", 2 * LEASE + Duration::from_secs(5));
    for i in 0..3 {
        fleet.hosts[i].fail("EU");
    }
    wait_until(
        THRESHOLD + Duration::from_secs(5),
        "hosts 0-3 on NAM",
        || {
            fleet.hosts[..4]
                .iter()
                .all(|h| h.region().as_deref() == Some("NAM"))
        },
    );
    assert_eq!(fleet.hosts[4].region().as_deref(), Some("EU"));
    for c in shared.lock().unwrap().iter() {
        c.set_cut(false);
    }
    wait_until(Duration::from_secs(5), "host 4 back on NAM", || {
        fleet.hosts[4].region().as_deref() == Some("NAM")
    });
    let h4 = &fleet.hosts[4];
    assert_eq!(h4.events("fleet_store_lost").len(), 1, "{}", fleet.dump());
    assert_eq!(h4.events("fleet_store_back").len(), 1, "{}", fleet.dump());
    assert_eq!(fleet.moves().len(), 1, "{}", fleet.dump());
    // The store is told back as soon as it answers: before the restart that catches up.
    let restarting = |v: &Value| v["event"] == "restarting" && v["region"] == "NAM";
    h4.daemon().wait_for(restarting, Duration::from_secs(5));
    let events: Vec<Value> = h4.daemon().json_lines();
    let back = events.iter().position(|v| v["event"] == "fleet_store_back");
    let restarted = events.iter().position(restarting);
    assert!(back.is_some() && back < restarted, "{}", fleet.dump());
}

#[test]
fn pause_holds_the_fleet_switch_moves_it_and_a_dead_slot_holder_does_not_block() {
    let mut fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.15),
        ..Setup::default()
    });
    let base = fleet.hosts[0].cmd.clone();
    let cmd = |args: &[&str]| base.clone().sub(args);
    // 8) pause --fleet holds all, even with three of five in outage.
    let out = cmd(&["pause", "--fleet"]).exits(0);
    assert!(out.stdout.contains("paused"), "{out:?}");
    for i in 0..3 {
        fleet.hosts[i].fail("EU");
    }
    fleet.probes_pass(30);
    assert!(
        fleet.all_on("EU"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    assert!(fleet.moves().is_empty());
    let status = cmd(&["status", "--fleet", "--json"]).exits(0);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(status["paused"].is_string(), "{status}");
    assert_eq!(status["hosts"].as_array().unwrap().len(), HOSTS);
    let text = cmd(&["status", "--fleet"]).exits(0).stdout;
    assert!(text.contains("active:  EU (epoch 1"), "{text}");
    assert!(text.contains("paused:  paused by h0"), "{text}");
    assert_eq!(text.matches(" outage").count(), 3, "{text}");
    // The leader tells the move it holds, once; every host tells the pause, and its own
    // status says its switching is paused with the fleet.
    let held = fleet.hosts[fleet.leader()].events("fleet_move_paused");
    assert_eq!(held.len(), 1, "{}", fleet.dump());
    assert_fields(
        &held[0],
        &[("level", "WARN"), ("region", "EU"), ("to_region", "NAM")],
    );
    assert!(
        text_of(&held[0]["paused"]).starts_with("paused by h0"),
        "{}",
        held[0]
    );
    assert!(fleet.moves().is_empty());
    for h in &fleet.hosts {
        let paused = h.events("fleet_paused");
        assert_eq!(paused.len(), 1, "{}", fleet.dump());
    }
    let own = cmd(&["status"]).exits(0).stdout;
    assert!(
        own.contains("Switching:     PAUSED for the whole fleet (paused by h0"),
        "{own}"
    );
    // switch --fleet APAC moves all, one restart at a time.
    let out = cmd(&["switch", "APAC", "--fleet"]).exits(0);
    assert!(out.stdout.contains("APAC"), "{out:?}");
    // 9) The first host to take a slot is SIGKILLed mid-restart: its slot expires with its
    // lease and the others go on.
    let holder = loop {
        if let Some(i) = (0..HOSTS).find(|&i| !fleet.hosts[i].events("restarting").is_empty()) {
            break i;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    fleet.hosts[holder].kill();
    wait_until(
        LEASE + Duration::from_secs(10),
        "the live hosts on APAC",
        || fleet.all_on("APAC"),
    );
    let spans = fleet.restarts();
    assert!(peak(&spans) <= 1, "{spans:?}");
    wait_until(LEASE + Duration::from_secs(2), "no slot left", || {
        fleet.keys("restarts/").is_empty()
    });
    cmd(&["resume", "--fleet"]).exits(0);
    assert!(fleet.key("pause").is_none());
    for h in fleet.hosts.iter().filter(|h| h.killed.is_none()) {
        h.daemon()
            .wait_for_event("fleet_resumed", Duration::from_secs(5));
    }
}

/// The figures of docs/fleet.md: etcd writes per host per hour in steady state (lease
/// keep-alives do not write), and how long the fleet takes to move. Run by
/// scripts/fleet-bench.sh.
#[test]
#[ignore = "a benchmark: scripts/fleet-bench.sh"]
fn bench_steady_state_writes_and_convergence() {
    let steady = Duration::from_secs(
        std::env::var("FLEET_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let fleet = Fleet::start(Setup {
        slow_restart: None,
        ..Setup::default()
    });
    std::thread::sleep(Duration::from_secs(1));
    let before = fleet.cluster.revision();
    std::thread::sleep(steady);
    let writes = fleet.cluster.revision() - before;
    let per_host_hour = writes as f64 / HOSTS as f64 * 3600.0 / steady.as_secs_f64();
    println!(
        "steady state: {writes} etcd writes by {HOSTS} hosts in {steady:?}: {per_host_hour:.1} writes per host per hour (beyond lease keep-alives)"
    );
    let started = Instant::now();
    for h in &fleet.hosts[..3] {
        h.fail("EU");
    }
    wait_until(THRESHOLD + Duration::from_secs(10), "all on NAM", || {
        fleet.all_on("NAM")
    });
    let took = started.elapsed();
    println!(
        "convergence: {HOSTS} hosts on the new region {took:?} after the outage began \
         (threshold {THRESHOLD:?}, probe interval {INTERVAL:?}, max_concurrent_restarts 2): \
         {:?} beyond the threshold",
        took.saturating_sub(THRESHOLD)
    );
    assert_eq!(writes, 0, "{}", fleet.dump());
}

/// Regions with standby checks on TCP ports, and one reference target.
fn checked_regions(nam: u16, apac: u16, reference: u16) -> String {
    format!(
        "[[regions]]\nname = \"EU\"\ncloud = \"{}\"\n\
         [[regions]]\nname = \"NAM\"\ncloud = \"{}\"\nhealth_url = \"tcp://127.0.0.1:{nam}\"\n\
         [[regions]]\nname = \"APAC\"\ncloud = \"{}\"\nhealth_url = \"tcp://127.0.0.1:{apac}\"\n\
         [region_checks]\ninterval = \"100ms\"\ntimeout = \"400ms\"\nrise = 2\nfall = 2\n\
         [network]\nreference = [\"tcp://127.0.0.1:{reference}\"]\n",
        crate::support::cloud_of("EU"),
        crate::support::cloud_of("NAM"),
        crate::support::cloud_of("APAC"),
    )
}

#[test]
fn hosts_that_blame_their_own_network_abstain() {
    // Hosts 0-2 lose their own network: the active region, every standby and the reference
    // all fail for them (closed ports). Hosts 3 and 4 reach everything. The three say so in
    // their views and abstain; the two voters left see no outage. (Which of abstention or the
    // standbys' health holds the move here is the kernel's table to tell.)
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = open.local_addr().unwrap().port();
    let down = free_port();
    let fleet = Fleet::start(Setup {
        before: Box::new(move |i| {
            if i < 3 {
                checked_regions(down, down, down)
            } else {
                checked_regions(up, up, up)
            }
        }),
        ..Setup::default()
    });
    for h in &fleet.hosts[..3] {
        h.fail("EU");
    }
    wait_until(
        Duration::from_secs(5),
        "three hosts to blame themselves",
        || {
            fleet
                .keys("views/")
                .iter()
                .filter(|(_, v)| v.contains("\"blames_self\":true"))
                .count()
                == 3
        },
    );
    fleet.probes_pass(20);
    assert!(
        fleet.all_on("EU"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    assert!(fleet.moves().is_empty(), "{}", fleet.dump());
    drop(open);
}

/// One handler alone on a one-member cluster, with `extra` keys in its `[fleet]`.
fn lone_host(cluster: &EtcdCluster, dir: &TestDir, extra: &str) -> Cmd {
    let config = dir.write_file(
        "fleet.toml",
        &format!(
            "[fleet]\nendpoints = {}\nname = \"lone\"\nhost = \"h0\"\nlease_ttl = \"3s\"\n{extra}",
            cluster.endpoints_toml()
        ),
    );
    Cmd::new(dir)
        .flag("--region", "EU")
        .flag("--config", config.to_str().unwrap())
}

#[test]
fn etcd_over_tls_with_a_client_certificate() {
    let dir = TestDir::with_env("EU");
    let server = dir.pki().tunnel();
    let client = dir.pki().issue(&["failover-handler"]);
    let file = |name: &str, text: &str| dir.write_file(name, text);
    let (cert, key) = (
        file("etcd.pem", &server.cert_pem),
        file("etcd.key", &server.key_pem),
    );
    let (ccert, ckey) = (
        file("client.pem", &client.cert_pem),
        file("client.key", &client.key_pem),
    );
    let cluster = EtcdCluster::start_tls(&cert, &key, &dir.ca_pem());
    let tunnel = FakeTunnel::start(&dir);
    let ca = format!("ca_cert = \"{}\"\n", dir.ca_pem().display());
    let extra = format!(
        "{ca}client_cert = \"{}\"\nclient_key = \"{}\"\n",
        ccert.display(),
        ckey.display()
    );
    let cmd = lone_host(&cluster, &dir, &extra).tunnel(&tunnel);
    let d = cmd.spawn_daemon();
    d.wait_for_event("fleet_leader", Duration::from_secs(10));
    wait_until(Duration::from_secs(5), "active = EU through TLS", || {
        let out = cmd.clone().sub(&["status", "--fleet", "--json"]).output();
        out.code == Some(0) && out.stdout.contains("\"region\":\"EU\"")
    });
    // Without the client certificate, etcd refuses the connection.
    let bare = TestDir::new();
    let out = lone_host(&cluster, &bare, &ca)
        .sub(&["status", "--fleet"])
        .exits(1);
    assert!(
        out.stderr.contains("cannot reach the fleet's store"),
        "{out:?}"
    );
}

#[test]
fn etcd_with_a_user_and_password_from_the_environment() {
    let cluster = EtcdCluster::start(1);
    for (path, body) in [
        (
            "/v3/auth/user/add",
            serde_json::json!({"name": "root", "password": "pw-secret-1"}),
        ),
        ("/v3/auth/role/add", serde_json::json!({"name": "root"})),
        (
            "/v3/auth/user/grant",
            serde_json::json!({"user": "root", "role": "root"}),
        ),
        ("/v3/auth/enable", serde_json::json!({})),
    ] {
        cluster.post(0, path, &body);
    }
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&dir);
    let without = lone_host(&cluster, &dir, "")
        .sub(&["status", "--fleet"])
        .exits(1);
    assert!(without.stderr.contains("user name is empty"), "{without:?}");
    let cmd = lone_host(&cluster, &dir, "")
        .tunnel(&tunnel)
        .env("FAILOVER_HANDLER_ETCD_USER", "root")
        .env("FAILOVER_HANDLER_ETCD_PASSWORD", "pw-secret-1");
    let d = cmd.spawn_daemon();
    d.wait_for_event("fleet_leader", Duration::from_secs(10));
    let out = cmd.clone().sub(&["status", "--fleet", "--json"]).exits(0);
    assert!(out.stdout.contains("\"leader\":\"h0\""), "{out:?}");
    // A wrong password: no access, and the password is in no line.
    let wrong = cmd
        .clone()
        .env("FAILOVER_HANDLER_ETCD_PASSWORD", "pw-wrong-2");
    let out = wrong.clone().sub(&["status", "--fleet"]).exits(1);
    assert!(!out.stderr.contains("pw-wrong-2") && !out.stdout.contains("pw-wrong-2"));
    assert!(!d.dump().contains("pw-secret-1"));
    // etcd's own words are shown, not a follow-on error.
    assert!(
        out.stderr
            .contains("authentication failed, invalid user ID or password"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("user name is empty"), "{out:?}");
    // A daemon with the wrong password says so, and asks etcd again only with backoff.
    let other = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&other);
    let bad = lone_host(&cluster, &other, "")
        .tunnel(&tunnel)
        .env("FAILOVER_HANDLER_ETCD_USER", "root")
        .env("FAILOVER_HANDLER_ETCD_PASSWORD", "pw-wrong-2")
        .spawn_daemon();
    let lost = bad.wait_for_event("fleet_store_lost", 2 * LEASE + Duration::from_secs(10));
    assert!(
        lost["error"]
            .as_str()
            .unwrap_or_default()
            .contains("authentication failed, invalid user ID or password"),
        "{lost}"
    );
    let authenticate = || cluster.metric(0, "grpc_server_started_total", "\"Authenticate\"");
    let before = authenticate();
    let window = Duration::from_secs(6);
    std::thread::sleep(window);
    let calls = authenticate() - before;
    assert!(calls <= 5.0, "{calls} Authenticate calls in {window:?}");
    assert!(!bad.dump().contains("pw-wrong-2"));
}

#[test]
fn the_tunnel_refusing_on_every_host_moves_no_fleet() {
    // A fault of each host's own (its local tunnel's port closed) on all five at once: each
    // host restarts in place and abstains; EU is not in outage for anybody's probes of it.
    let fleet = Fleet::start(Setup::default());
    for h in &fleet.hosts {
        h.tunnel.set_default(Mode::Refuse);
    }
    for h in &fleet.hosts {
        h.daemon()
            .wait_for_event("tunnel_restart", THRESHOLD + Duration::from_secs(15));
    }
    // Past a second threshold (when a lone host would switch) and a fleet decision.
    std::thread::sleep(2 * THRESHOLD + Duration::from_secs(2));
    assert!(fleet.moves().is_empty(), "{}", fleet.dump());
    let views = fleet.keys("views/");
    assert_eq!(
        views
            .iter()
            .filter(|(_, v)| v.contains("\"local_fault\":true"))
            .count(),
        HOSTS,
        "{views:?}"
    );
    assert!(
        fleet.all_on("EU"),
        "{:?}\n{}",
        fleet.regions(),
        fleet.dump()
    );
    assert!(
        fleet.key("active").unwrap().contains("\"epoch\":1"),
        "{}",
        fleet.dump()
    );
}

impl Fleet {
    /// Every restart on every host, as the recording supervisorctl saw them.
    fn call_spans(&self) -> Vec<(SystemTime, SystemTime)> {
        self.hosts
            .iter()
            .flat_map(|h| restart_spans(&h.dir))
            .collect()
    }
}

#[test]
fn restarts_in_place_on_every_host_take_the_fleets_slots() {
    // The tunnel refuses on all five hosts: each restarts its programs in place, one at a
    // time (max_concurrent_restarts = 1), as supervisorctl's clock shows.
    let fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.1),
        ..Setup::default()
    });
    for h in &fleet.hosts {
        h.tunnel.set_default(Mode::Refuse);
    }
    wait_until(
        THRESHOLD + Duration::from_secs(20),
        "every host to restart in place",
        || fleet.call_spans().len() >= HOSTS,
    );
    let spans = fleet.call_spans();
    assert_eq!(peak(&spans), 1, "{spans:?}\n{}", fleet.dump());
    for h in &fleet.hosts {
        assert!(!h.events("tunnel_restart").is_empty(), "{}", fleet.dump());
    }
    assert!(fleet.all_on("EU"), "{:?}", fleet.regions());
}

#[test]
fn two_epochs_in_a_row_share_one_restart_slot() {
    // A second `switch --fleet` while the first epoch's holder is still restarting: the new
    // epoch's first host waits for it (max_concurrent_restarts = 1 for the fleet, not per
    // epoch).
    let fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.15),
        ..Setup::default()
    });
    let cmd = |args: &[&str]| fleet.hosts[0].cmd.clone().sub(args);
    cmd(&["switch", "NAM", "--fleet"]).exits(0);
    wait_until(Duration::from_secs(10), "a host restarting for NAM", || {
        fleet
            .hosts
            .iter()
            .any(|h| !h.events("restarting").is_empty())
    });
    cmd(&["switch", "APAC", "--fleet"]).exits(0);
    wait_until(Duration::from_secs(40), "every host on APAC", || {
        fleet.all_on("APAC")
    });
    let spans = fleet.call_spans();
    assert_eq!(peak(&spans), 1, "{spans:?}\n{}", fleet.dump());
}

#[test]
fn a_second_handler_with_the_same_host_name_is_refused_and_a_restarted_one_is_not() {
    let mut fleet = Fleet::start(Setup::default());
    // Another process calls itself h2 while h2 runs: exit 2 at start, naming both.
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&dir);
    let config = dir.write_file(
        "fleet.toml",
        &format!(
            "[fleet]\nendpoints = {}\nname = \"{}\"\nhost = \"h2\"\nlease_ttl = \"{}s\"\n",
            fleet.cluster.endpoints_toml(),
            fleet.name,
            LEASE.as_secs()
        ),
    );
    let twin = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--config", config.to_str().unwrap());
    let out = twin.output_within(LEASE + Duration::from_secs(15));
    assert_eq!(out.code, Some(2), "{out:?}");
    let pid = fleet.hosts[2].daemon().pid().to_string();
    assert!(
        out.stderr.contains("fleet.host") && out.stderr.contains("h2") && out.stderr.contains(&pid),
        "{out:?}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    assert!(fleet.hosts[2].daemon.as_mut().unwrap().is_running());
    // h4 killed and started again at once: the same name, its own lease gone with it, is
    // taken back once that lease ends.
    fleet.hosts[4].kill();
    fleet.hosts[4].killed = None;
    fleet.hosts[4].start();
    wait_until(
        LEASE + Duration::from_secs(10),
        "h4 back in the fleet",
        || {
            fleet.keys("views/").len() == HOSTS
                && fleet.hosts[4].events("fleet_store_lost").is_empty()
        },
    );
    assert!(
        fleet.hosts[4].daemon.as_mut().unwrap().is_running(),
        "{}",
        fleet.dump()
    );
}

#[test]
fn a_handler_whose_killed_former_self_still_holds_its_name_waits_for_it() {
    // A handler killed on this machine leaves `hosts/h1` on its lease; etcd renews every
    // lease when it elects a leader, so the lease can outlive the handler's own lease_ttl by
    // far. Its successor, started on the same machine, finds the name held by a pid that no
    // longer runs here: it waits for the lease rather than exit 2 after one lease_ttl.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let _slot = HeavySlot::take();
    let cluster = EtcdCluster::start(1);
    let name = format!("dead{}", std::process::id());
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let grant =
        (cluster.post(0, "/v3/lease/grant", &serde_json::json!({"TTL": 120}))).expect("a lease");
    let lease = grant["ID"].as_str().unwrap().to_owned();
    let held = serde_json::json!({"instance": "former", "pid": dead_pid, "hostname": here.trim()});
    cluster
        .post(
            0,
            "/v3/kv/put",
            &serde_json::json!({
                "key": b64.encode(format!("/failover-handler/{name}/hosts/h1")),
                "value": b64.encode(held.to_string()),
                "lease": lease,
            }),
        )
        .expect("the former self's claim");
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&dir);
    let config = dir.write_file(
        "fleet.toml",
        &format!(
            "[fleet]\nendpoints = {}\nname = \"{name}\"\nhost = \"h1\"\nlease_ttl = \"{}s\"\n",
            cluster.endpoints_toml(),
            LEASE.as_secs()
        ),
    );
    let mut d = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--config", config.to_str().unwrap())
        .spawn_daemon();
    let taken = d.wait_for_event("fleet_host_taken", Duration::from_secs(10));
    assert!(
        text_of(&taken["holder"]).contains(&format!("pid {dead_pid}")),
        "{taken}"
    );
    // Past the deadline a live holder gets (one lease_ttl and a second), the former self's
    // lease still runs: the handler still waits.
    std::thread::sleep(LEASE + Duration::from_secs(2));
    assert!(d.is_running(), "{}", d.dump());
    cluster
        .post(0, "/v3/lease/revoke", &serde_json::json!({"ID": lease}))
        .expect("the lease revoked");
    let started = d.wait_for_event("daemon_started", Duration::from_secs(10));
    assert_eq!(text_of(&started["region"]), "EU", "{started}");
    let key = format!("/failover-handler/{name}/hosts/h1");
    wait_until(
        Duration::from_secs(10),
        "h1 claimed by the new handler",
        || {
            cluster
                .range(&key)
                .iter()
                .any(|(_, v)| v.contains(&format!("\"pid\":{}", d.pid())))
        },
    );
}

#[test]
fn a_host_stopped_past_its_lease_is_not_a_lost_store() {
    // SIGSTOP h4 for longer than its lease, then SIGCONT: the store answers "lease not
    // found"; the host takes a new lease and publishes its view again, without calling
    // the store lost.
    let fleet = Fleet::start(Setup::default());
    let pid = fleet.hosts[4].daemon().pid().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    wait_until(
        LEASE + Duration::from_secs(5),
        "h4's view to expire",
        || fleet.keys("views/").len() == HOSTS - 1,
    );
    std::thread::sleep(Duration::from_millis(500));
    signal("-CONT");
    wait_until(Duration::from_secs(10), "h4's view back", || {
        fleet.keys("views/").len() == HOSTS
    });
    std::thread::sleep(Duration::from_secs(1));
    let h4 = &fleet.hosts[4];
    assert!(h4.events("fleet_store_lost").is_empty(), "{}", fleet.dump());
}

#[test]
fn an_endpoint_that_is_not_etcd_is_passed_over() {
    // The first endpoint answers every request with 200 and `{}` (some other JSON service):
    // it is not taken for etcd, and the real member behind it is used.
    use std::io::{Read, Write};
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in fake.incoming().flatten() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    let cluster = EtcdCluster::start(1);
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&dir);
    let config = dir.write_file(
        "fleet.toml",
        &format!(
            "[fleet]\nendpoints = [\"http://127.0.0.1:{fake_port}\", \"{}\"]\nname = \"lone\"\nhost = \"h0\"\nlease_ttl = \"3s\"\n",
            cluster.endpoints()[0]
        ),
    );
    let cmd = Cmd::new(&dir)
        .flag("--region", "EU")
        .flag("--config", config.to_str().unwrap())
        .tunnel(&tunnel);
    let d = cmd.spawn_daemon();
    d.wait_for_event("fleet_leader", Duration::from_secs(15));
    wait_until(
        Duration::from_secs(5),
        "active = EU in the real etcd",
        || {
            cluster
                .range("/failover-handler/lone/active")
                .iter()
                .any(|(_, v)| v.contains("\"EU\""))
        },
    );
}

/// Every supervisorctl call of `dir`'s host, from its beginning to its end, in wall time.
fn calls_of(dir: &TestDir) -> Vec<(SystemTime, SystemTime)> {
    let text = std::fs::read_to_string(dir.path().join("timed.log")).unwrap_or_default();
    let at = |line: &str| {
        let secs: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        std::time::UNIX_EPOCH + Duration::from_secs_f64(secs)
    };
    let begins = text.lines().filter(|l| l.starts_with("B ")).map(at);
    let ends = text.lines().filter(|l| l.starts_with("E ")).map(at);
    begins.zip(ends).collect()
}

impl Fleet {
    /// The most hosts inside a supervisorctl call at the same moment.
    fn call_peak(&self) -> usize {
        let per_host: Vec<Vec<(SystemTime, SystemTime)>> =
            self.hosts.iter().map(|h| calls_of(&h.dir)).collect();
        let all: Vec<(SystemTime, SystemTime)> = per_host.iter().flatten().copied().collect();
        all.iter()
            .map(|(s, _)| {
                per_host
                    .iter()
                    .filter(|calls| calls.iter().any(|(a, b)| a <= s && s < b))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// The first host to begin a supervisorctl call, once one has.
    fn first_caller(&self) -> usize {
        let began = |i: usize| {
            std::fs::read_to_string(self.hosts[i].dir.path().join("timed.log"))
                .is_ok_and(|t| t.contains("B "))
        };
        wait_until(Duration::from_secs(20), "a host restarting", || {
            (0..HOSTS).any(began)
        });
        (0..HOSTS).find(|&i| began(i)).unwrap()
    }
}

#[test]
fn a_holder_stopped_past_its_lease_starts_nothing_beside_the_next_holder() {
    // One slot for the fleet. The first host to restart for `switch --fleet` is SIGSTOPped
    // during its first call, past its lease: the slot passes to the next host. On SIGCONT
    // the stopped host makes no further call beside it; it says so, and makes its restart
    // again once it holds a slot.
    let fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.3),
        ..Setup::default()
    });
    fleet.hosts[0]
        .cmd
        .clone()
        .sub(&["switch", "NAM", "--fleet"])
        .exits(0);
    let first = fleet.first_caller();
    let pid = fleet.hosts[first].daemon().pid().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    wait_until(
        LEASE + Duration::from_secs(10),
        "another host restarting",
        || {
            (0..HOSTS)
                .filter(|&i| i != first)
                .any(|i| !calls_of(&fleet.hosts[i].dir).is_empty())
        },
    );
    signal("-CONT");
    let stopped = fleet.hosts[first]
        .daemon()
        .wait_for_event("restart_lease_lost", Duration::from_secs(5));
    assert_eq!(stopped["region"], "NAM", "{stopped}");
    wait_until(
        Duration::from_secs(40),
        "every host on NAM, restarted",
        || {
            fleet.all_on("NAM")
                && fleet
                    .hosts
                    .iter()
                    .all(|h| !h.events("restart_done").is_empty())
        },
    );
    assert_eq!(fleet.call_peak(), 1, "{}", fleet.dump());
    // The stopped host's programs all run again: its last three calls start them.
    let calls = fleet.hosts[first].dir.calls();
    assert!(
        calls.iter().rev().take(3).all(|c| c.contains("start")),
        "{calls:?}"
    );
}

#[test]
fn a_handler_killed_mid_restart_resumes_it_inside_a_slot() {
    // One slot for the fleet. The first host to restart for `switch --fleet` is killed -9
    // during its restart and started again at once: its interrupted restart is made again
    // in the fleet's line of restarts, never beside another host's.
    let mut fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.3),
        ..Setup::default()
    });
    fleet.hosts[0]
        .cmd
        .clone()
        .sub(&["switch", "NAM", "--fleet"])
        .exits(0);
    let first = fleet.first_caller();
    fleet.hosts[first].kill();
    fleet.hosts[first].killed = None;
    fleet.hosts[first].start();
    let host = &fleet.hosts[first];
    host.daemon()
        .wait_for_event("restart_resumed", Duration::from_secs(40));
    wait_until(
        Duration::from_secs(40),
        "every host on NAM, restarted",
        || {
            fleet.all_on("NAM")
                && fleet
                    .hosts
                    .iter()
                    .all(|h| !h.events("restart_done").is_empty())
        },
    );
    assert_eq!(fleet.call_peak(), 1, "{}", fleet.dump());
}

#[test]
fn a_wiped_store_is_reseeded_with_the_fleets_last_decision_and_nobody_restarts() {
    // The fleet moved to NAM (epoch 2); then every key of the fleet is deleted. The leader
    // sets `active` again to NAM, above the epoch the hosts executed, and no host restarts.
    let fleet = Fleet::start(Setup::default());
    fleet.hosts[0]
        .cmd
        .clone()
        .sub(&["switch", "NAM", "--fleet"])
        .exits(0);
    wait_until(
        Duration::from_secs(30),
        "every host on NAM, restarted",
        || {
            fleet.all_on("NAM")
                && fleet
                    .hosts
                    .iter()
                    .all(|h| !h.events("restart_done").is_empty())
        },
    );
    fleet.probes_pass(5);
    let calls: Vec<usize> = fleet.hosts.iter().map(|h| h.dir.calls().len()).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = format!("/failover-handler/{}/", fleet.name);
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    let wipe = serde_json::json!({"key": b64.encode(&prefix), "range_end": b64.encode(&end)});
    assert!((0..3).any(|i| fleet.cluster.post(i, "/v3/kv/deleterange", &wipe).is_some()));
    wait_until(Duration::from_secs(15), "active re-seeded", || {
        fleet.key("active").is_some()
    });
    let active = fleet.key("active").unwrap();
    assert!(
        active.contains("\"region\":\"NAM\"")
            && active.contains("\"epoch\":3")
            && active.contains("\"reason\":\"reseed\""),
        "{active}\n{}",
        fleet.dump()
    );
    let leader = fleet.leader();
    let said = fleet.hosts[leader]
        .daemon()
        .wait_for_event("fleet_reseeded", Duration::from_secs(5));
    assert_eq!(
        (said["region"].as_str(), said["epoch"].as_u64()),
        (Some("NAM"), Some(3))
    );
    fleet.probes_pass(20);
    let after: Vec<usize> = fleet.hosts.iter().map(|h| h.dir.calls().len()).collect();
    assert_eq!(after, calls, "{}", fleet.dump());
    assert!(fleet.all_on("NAM"), "{:?}", fleet.regions());
}

/// A host restarting for the fleet's newer epoch is shown moving there, not in an outage of
/// the region it leaves.
#[test]
fn status_fleet_shows_a_host_restarting_for_a_newer_epoch_as_moving() {
    let fleet = Fleet::start(Setup {
        max_concurrent_restarts: 1,
        slow_restart: Some(0.5),
        ..Setup::default()
    });
    let cmd = |args: &[&str]| fleet.hosts[0].cmd.clone().sub(args);
    for i in 0..3 {
        fleet.hosts[i].fail("EU");
    }
    let mut mover = None;
    wait_until(Duration::from_secs(20), "a host restarting for NAM", || {
        mover = (0..HOSTS).find(|&i| {
            fleet.hosts[i]
                .events("restarting")
                .iter()
                .any(|v| v["region"] == "NAM")
        });
        mover.is_some()
    });
    let mover = format!("h{}", mover.unwrap());
    let text = cmd(&["status", "--fleet"]).exits(0).stdout;
    let json = cmd(&["status", "--fleet", "--json"]).exits(0).stdout;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{mover} ")))
        .unwrap_or_else(|| panic!("no line for {mover}\n{text}"));
    assert!(line.contains("-> NAM, restarting"), "{text}");
    assert!(!line.contains("outage"), "{text}");
    let json: Value = serde_json::from_str(&json).unwrap();
    let host = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == mover.as_str())
        .unwrap();
    assert_eq!(host["moving_to"], "NAM", "{json}");
    assert_eq!(host["restart"], "restarting", "{json}");
    wait_until(Duration::from_secs(40), "every host on NAM", || {
        fleet.all_on("NAM")
    });
}

/// etcd loses its quorum (two members hang) and gets it back: the host that followed its own
/// rules meanwhile (`on_store_loss = "local"`) tells the store back as soon as it answers,
/// before the restart that takes it back to the fleet's region.
#[test]
fn a_store_that_returns_is_told_back_before_the_restart_that_catches_up() {
    let fleet = Fleet::start(Setup {
        local: Some(4),
        ..Setup::default()
    });
    fleet.cluster.freeze(0, true);
    fleet.cluster.freeze(1, true);
    let h4 = &fleet.hosts[4];
    h4.fail("EU");
    h4.daemon()
        .wait_for_event("failover", 2 * LEASE + Duration::from_secs(15));
    wait_until(Duration::from_secs(10), "host 4 on NAM", || {
        h4.region().as_deref() == Some("NAM")
    });
    h4.tunnel.set_region("EU", Mode::Up);
    fleet.cluster.freeze(0, false);
    fleet.cluster.freeze(1, false);
    let restarting = |v: &Value| v["event"] == "restarting" && v["region"] == "EU";
    h4.daemon().wait_for(restarting, Duration::from_secs(30));
    let events: Vec<Value> = h4.daemon().json_lines();
    let back = events.iter().position(|v| v["event"] == "fleet_store_back");
    let restarted = events.iter().position(restarting);
    assert!(back.is_some() && back < restarted, "{}", fleet.dump());
    wait_until(Duration::from_secs(10), "host 4 back on EU", || {
        h4.region().as_deref() == Some("EU")
    });
}
