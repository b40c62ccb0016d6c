//! Chaos on the real thing: a real three-member etcd and five handlers under a seeded random
//! schedule of faults (etcd members and the etcd leader killed or stopped, handlers killed or
//! stopped, slot holders and the fleet's leader among them, a wipe of the store, the local
//! tunnel refusing on k hosts, outages, `switch --fleet`, `pause --fleet`). Every host's
//! restarts (its supervisorctl's clock), env writes (its `switch` lines) and the store's
//! writes (an etcd watch from revision 1) make one history, checked for the fleet's
//! invariants (see `history`). `scripts/fleet-chaos.sh` runs the long schedule.

mod checker;
mod history;
mod schedule;
mod watch;

use std::time::{Duration, Instant, SystemTime};

use history::{Entry, Rules, What};

use crate::support::etcd::EtcdCluster;
use crate::support::{Cmd, Daemon, FakeTunnel, HeavySlot, TestDir, timestamp, wait_until};

const HOSTS: usize = 5;
const CAP: usize = 2;
const LEASE: Duration = Duration::from_secs(3);
const THRESHOLD: Duration = Duration::from_secs(1);

/// The fleet's rules as the checker applies them to this setup.
const RULES: Rules = Rules {
    cap: CAP,
    quorum: 0.5,
    min_voters: 2,
    // A host that lost the store notices its return within a lease or two.
    after_loss: 2.0 * 3.0 + 2.0,
    lag: 1.0,
    decision_window: 3.0,
};

/// One handler: its dir (env file, recording supervisorctl), its tunnel, its process, and the
/// processes it ran before (killed), whose lines are history too.
struct Host {
    dir: TestDir,
    tunnel: FakeTunnel,
    cmd: Cmd,
    daemon: Option<Daemon>,
    past: Vec<Daemon>,
    stopped: bool,
}

impl Host {
    fn region(&self) -> Option<String> {
        let env = self.dir.read_env()?;
        env.lines()
            .find_map(|l| l.strip_prefix("export EXT_REGION="))
            .map(str::to_owned)
    }

    fn running(&self) -> bool {
        self.daemon.is_some() && !self.stopped
    }

    fn signal(&self, sig: &str) {
        if let Some(d) = &self.daemon {
            let _ = std::process::Command::new("kill")
                .args([sig, &d.pid().to_string()])
                .status();
        }
    }

    /// Its env writes as (wall time, from, to), over every process it ran.
    fn env_writes(&self) -> Vec<(SystemTime, String, String)> {
        self.past
            .iter()
            .chain(&self.daemon)
            .flat_map(|d| d.events("switch"))
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (timestamp(&e), text("region"), text("to_region"))
            })
            .collect()
    }

    /// Its restarts as its supervisorctl saw them: (begin, end, region) in wall time. A
    /// restart is the calls of one handler process from its first `stop` of the application
    /// to its last `start` of it; a process killed mid-way ends it at its last call.
    fn restarts(&self) -> Vec<(f64, f64, String)> {
        let text =
            std::fs::read_to_string(self.dir.path().join("restarts.log")).unwrap_or_default();
        let mut spans: Vec<(f64, f64, String)> = Vec::new();
        let mut open: Option<(String, f64, f64, String)> = None;
        for line in text.lines() {
            let mut parts = line.splitn(5, ' ');
            let (Some(mark), Some(at), Some(pid), Some(region), Some(call)) = (
                parts.next(),
                parts.next().and_then(|t| t.parse::<f64>().ok()),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                continue;
            };
            let first = call == "stop app:application";
            match (&mut open, mark) {
                (Some(o), "B") if o.0 == pid && !first => o.2 = o.2.max(at),
                (Some(o), "E") if o.0 == pid => {
                    o.2 = o.2.max(at);
                    if call == "start app:application" {
                        let (_, b, e, r) = open.take().unwrap();
                        spans.push((b, e, r));
                    }
                }
                (_, "B") => {
                    if let Some((_, b, e, r)) = open.take() {
                        spans.push((b, e, r));
                    }
                    open = Some((pid.to_owned(), at, at, region.to_owned()));
                }
                _ => {}
            }
        }
        spans.extend(open.map(|(_, b, e, r)| (b, e, r)));
        spans
    }
}

/// The recording supervisorctl of host `dir`: each call's begin and end on its clock, the
/// handler that made it (its parent) and the region its env file names, then 100 ms of work.
fn recorder(dir: &TestDir) -> std::path::PathBuf {
    let log = dir.path().join("restarts.log");
    let env = dir.env_file();
    dir.write_script(
        "recording-supervisorctl",
        &format!(
            "r=$(sed -n 's/^export EXT_REGION=//p' '{env}')\n\
             echo \"B $(date +%s.%N) $PPID $r $*\" >> '{log}'\n\
             sleep 0.1\n\
             echo \"E $(date +%s.%N) $PPID $r $*\" >> '{log}'",
            env = env.display(),
            log = log.display()
        ),
    )
}

/// The cluster, the five hosts on EU, the watch, and what the runner itself recorded.
pub struct Chaos {
    seed: u64,
    began: SystemTime,
    cluster: EtcdCluster,
    hosts: Vec<Host>,
    name: String,
    watch: watch::Watch,
    log: Vec<Entry>,
    _slot: HeavySlot,
}

impl Chaos {
    fn start(seed: u64) -> Chaos {
        let slot = HeavySlot::take();
        let cluster = EtcdCluster::start(3);
        let name = format!("chaos{}", std::process::id());
        let prefix = format!("/failover-handler/{name}/");
        let ports: Vec<u16> = cluster
            .endpoints()
            .iter()
            .filter_map(|e| e.rsplit(':').next()?.parse().ok())
            .collect();
        let watch = watch::Watch::start(&ports, &prefix);
        let hosts = (0..HOSTS)
            .map(|i| {
                let dir = TestDir::with_env("EU");
                let tunnel = FakeTunnel::start(&dir);
                let config = dir.write_file(
                    "fleet.toml",
                    &format!(
                        "[fleet]\nendpoints = {}\nname = \"{name}\"\nhost = \"h{i}\"\n\
                         min_voters = 2\nmax_concurrent_restarts = {CAP}\nlease_ttl = \"{}s\"\n",
                        cluster.endpoints_toml(),
                        LEASE.as_secs()
                    ),
                );
                let cmd = Cmd::new(&dir)
                    .tunnel(&tunnel)
                    .flag("--config", config.to_str().unwrap())
                    .flag("--supervisorctl", recorder(&dir).to_str().unwrap());
                Host {
                    dir,
                    tunnel,
                    cmd,
                    daemon: None,
                    past: Vec::new(),
                    stopped: false,
                }
            })
            .collect();
        let mut chaos = Chaos {
            seed,
            began: SystemTime::now(),
            cluster,
            hosts,
            name,
            watch,
            log: Vec::new(),
            _slot: slot,
        };
        for h in &mut chaos.hosts {
            h.daemon = Some(h.cmd.spawn_daemon());
        }
        wait_until(Duration::from_secs(20), "a leader and active = EU", || {
            chaos.key("leader").is_some()
                && chaos.key("active").is_some_and(|a| a.contains("\"EU\""))
                && chaos.keys("views/").len() == HOSTS
        });
        chaos
    }

    fn now(&self) -> f64 {
        self.secs(SystemTime::now())
    }

    fn secs(&self, t: SystemTime) -> f64 {
        match t.duration_since(self.began) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        }
    }

    fn record(&mut self, what: What) {
        let at = self.now();
        self.log.push(Entry { at, what });
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

    fn active_region(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.key("active")?).ok()?;
        v["region"].as_str().map(str::to_owned)
    }

    /// Starts again, as supervisord would, each handler that exited by itself; records and
    /// prints each exit with the handler's last words.
    fn revive(&mut self) -> usize {
        let mut revived = 0;
        for i in 0..HOSTS {
            let h = &mut self.hosts[i];
            if h.stopped || h.daemon.as_mut().is_none_or(Daemon::is_running) {
                continue;
            }
            let Some(dead) = h.daemon.take() else {
                continue;
            };
            let last = dead.json_lines().last().map_or(String::new(), |l| {
                l["message"].as_str().unwrap_or_default().to_owned()
            });
            h.past.push(dead);
            h.daemon = Some(h.cmd.spawn_daemon());
            let text = format!("h{i} exited by itself ({last}): started again");
            println!("chaos {:7.1}s EXIT {text}", self.now());
            self.record(What::Exit(text));
            revived += 1;
        }
        revived
    }

    /// Waits until every running host is on the store's `active` region, and records it.
    fn settle(&mut self) -> Option<Duration> {
        let started = Instant::now();
        let deadline = started + 3 * LEASE + Duration::from_secs(20);
        loop {
            self.revive();
            let active = self.active_region();
            let regions: Vec<(usize, Option<String>)> = (0..HOSTS)
                .filter(|&i| self.hosts[i].running())
                .map(|i| (i, self.hosts[i].region()))
                .collect();
            let converged = active.is_some()
                && regions
                    .iter()
                    .all(|(_, r)| r.as_deref() == active.as_deref());
            if converged || Instant::now() >= deadline {
                self.record(What::Settled {
                    regions,
                    active,
                    converged,
                });
                return converged.then(|| started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The whole history: the runner's record, the store's writes, every host's env writes
    /// and restarts, in time order.
    fn history(&self) -> Vec<Entry> {
        let mut all = self.log.clone();
        let prefix = format!("/failover-handler/{}/", self.name);
        for w in self.watch.writes() {
            all.push(Entry {
                at: self.secs(w.at),
                what: What::Store {
                    cluster: w.cluster,
                    revision: w.revision,
                    key: w.key.trim_start_matches(&prefix).to_owned(),
                    value: w.value,
                },
            });
        }
        for (i, h) in self.hosts.iter().enumerate() {
            for (at, from, to) in h.env_writes() {
                all.push(Entry {
                    at: self.secs(at),
                    what: What::EnvWrite { host: i, from, to },
                });
            }
            let base = self.secs(std::time::UNIX_EPOCH);
            for (b, e, region) in h.restarts() {
                all.push(Entry {
                    at: b + base,
                    what: What::Restart {
                        host: i,
                        end: e + base,
                        region,
                    },
                });
            }
        }
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    }
}

/// Runs a schedule of `secs` seconds from `seed`; prints it, the summary and each violation,
/// and fails on any violation.
fn run(seed: u64, secs: u64) {
    println!("chaos seed {seed}, {secs}s, {HOSTS} hosts, max_concurrent_restarts {CAP}");
    let mut chaos = Chaos::start(seed);
    let stats = schedule::run(&mut chaos, Duration::from_secs(secs));
    let history = chaos.history();
    let violations = history::check(&history, &RULES);
    schedule::summary(&chaos, &history, &stats, violations.len());
    for v in &violations {
        println!(
            "chaos VIOLATION {} (seed {seed}) at {:.1}s: {}",
            v.invariant, v.at, v.what
        );
    }
    if !violations.is_empty() {
        let dump: String = chaos
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let lines: Vec<String> = h
                    .past
                    .iter()
                    .chain(&h.daemon)
                    .flat_map(Daemon::lines)
                    .collect();
                format!("--- h{i}\n{}\n", lines.join("\n"))
            })
            .collect();
        let store: Vec<String> = history
            .iter()
            .filter(|e| !matches!(e.what, What::Restart { .. }))
            .map(|e| format!("{:8.3} {:?}", e.at, e.what))
            .collect();
        panic!(
            "{} violation(s) of the fleet's invariants with seed {seed} (rerun: \
             scripts/fleet-chaos.sh --seed {seed} --seconds {secs})\n--- history\n{}\n{dump}",
            violations.len(),
            store.join("\n")
        );
    }
}

/// The schedule CI runs: short (under 90 s with the fleet's start), seeded.
#[test]
fn a_short_seeded_schedule_keeps_the_fleets_invariants() {
    run(20261203, 45);
}

/// The long schedule: `FLEET_CHAOS_SEED` (default: from the clock) and `FLEET_CHAOS_SECS`
/// (default 300). Run by scripts/fleet-chaos.sh.
#[test]
#[ignore = "long: scripts/fleet-chaos.sh"]
fn long_schedule_from_the_environment() {
    let seed = std::env::var("FLEET_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
        });
    let secs = std::env::var("FLEET_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    run(seed, secs);
}
