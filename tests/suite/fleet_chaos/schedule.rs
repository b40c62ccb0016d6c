//! The seeded schedule: rounds of one or two faults, held a random while, healed, then the
//! fleet given time to settle. Each fault is printed as it is injected.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::history::{Entry, What, peak};
use super::{CAP, Chaos, HOSTS, LEASE, THRESHOLD};
use crate::support::Mode;

/// splitmix64: the same seed gives the same schedule (what the faults hit still depends on
/// the fleet's state at the moment: the etcd leader, the slot holders).
pub struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }

    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(lo + (hi - lo) * (self.next() % 10_000) as f64 / 10_000.0)
    }
}

/// Picks a fault of one kind, if one fits the fleet's state.
type Pick = fn(&mut Runner) -> Option<Fault>;

#[derive(Clone, Debug)]
enum Fault {
    MemberKill(usize, bool),
    MemberStop(usize, bool),
    HandlerKill(usize, &'static str),
    HandlerStop(usize, &'static str),
    Wipe,
    Tunnel(Vec<usize>),
    Outage(String),
    Switch(String),
    Pause,
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::MemberKill(..) => "etcd-kill",
            Fault::MemberStop(..) => "etcd-stop",
            Fault::HandlerKill(..) => "handler-kill",
            Fault::HandlerStop(..) => "handler-stop",
            Fault::Wipe => "store-wipe",
            Fault::Tunnel(_) => "tunnel-down",
            Fault::Outage(_) => "outage",
            Fault::Switch(_) => "switch-fleet",
            Fault::Pause => "pause-fleet",
        }
    }

    fn describe(&self) -> String {
        let leader = |l: bool| if l { " (the etcd leader)" } else { "" };
        match self {
            Fault::MemberKill(i, l) => format!("etcd-kill m{i}{}", leader(*l)),
            Fault::MemberStop(i, l) => format!("etcd-stop m{i}{}", leader(*l)),
            Fault::HandlerKill(h, why) => format!("handler-kill h{h} ({why})"),
            Fault::HandlerStop(h, why) => format!("handler-stop h{h} ({why})"),
            Fault::Wipe => "store-wipe".to_owned(),
            Fault::Tunnel(hs) => format!("tunnel-down on {hs:?}"),
            Fault::Outage(r) => format!("outage of {r} for every host"),
            Fault::Switch(r) => format!("switch --fleet {r}"),
            Fault::Pause => "pause --fleet".to_owned(),
        }
    }
}

/// What the schedule did, for the summary.
#[derive(Default)]
pub struct Stats {
    secs: f64,
    faults: BTreeMap<&'static str, usize>,
    /// Each outage: when it began, when it was healed, the region, and whether it was the
    /// round's only fault.
    outages: Vec<(f64, f64, String, bool)>,
    settle: Vec<Duration>,
}

struct Runner<'a> {
    chaos: &'a mut Chaos,
    rng: Rng,
    down: BTreeSet<usize>,
    store_down: bool,
    stats: Stats,
}

/// Runs rounds until `length` has passed.
pub fn run(chaos: &mut Chaos, length: Duration) -> Stats {
    let began = Instant::now();
    let rng = Rng(chaos.seed);
    let mut r = Runner {
        chaos,
        rng,
        down: BTreeSet::new(),
        store_down: false,
        stats: Stats::default(),
    };
    while began.elapsed() < length {
        r.round();
    }
    r.stats.secs = began.elapsed().as_secs_f64();
    r.stats
}

impl Runner<'_> {
    fn round(&mut self) {
        self.chaos.revive();
        let mut applied = Vec::new();
        let mut hold = self.rng.secs(1.0, 7.0);
        if self.rng.chance(0.2) {
            // A move, and one of the hosts restarting for it killed or stopped mid-restart.
            let fault = self.pick_from(&[6, 7]);
            self.inject(&fault);
            applied.push(fault);
            let holder = self.wait_for_holder();
            let stop = self.rng.chance(0.5);
            if let Some(h) = holder {
                let fault = if stop {
                    Fault::HandlerStop(h, "restarting")
                } else {
                    Fault::HandlerKill(h, "restarting")
                };
                self.inject(&fault);
                applied.push(fault);
            }
        } else {
            let n = if self.rng.chance(0.35) { 2 } else { 1 };
            for i in 0..n {
                if i > 0 {
                    std::thread::sleep(self.rng.secs(0.0, 1.5));
                }
                let fault = self.pick_from(&[]);
                self.inject(&fault);
                applied.push(fault);
            }
        }
        if let [Fault::Outage(_)] = applied.as_slice()
            && let Some(o) = self.stats.outages.last_mut()
        {
            o.3 = true;
        }
        if applied.iter().any(|f| matches!(f, Fault::Outage(_))) {
            hold = hold.max(THRESHOLD + self.rng.secs(1.0, 4.0));
        }
        std::thread::sleep(hold);
        for fault in applied.iter().rev() {
            self.heal(fault);
        }
        if let Some(took) = self.chaos.settle() {
            self.stats.settle.push(took);
        }
    }

    /// A host whose supervisorctl is running a restart now, waited for up to 5 s.
    fn wait_for_holder(&mut self) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let busy: Vec<usize> = (0..HOSTS)
                .filter(|&i| self.chaos.hosts[i].running())
                .filter(|&i| {
                    self.chaos.hosts[i]
                        .restarts()
                        .last()
                        .is_some_and(|(b, e, _)| now - b < 2.0 && now - e < 0.3)
                })
                .collect();
            if !busy.is_empty() {
                return Some(busy[self.rng.below(busy.len())]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn say(&mut self, what: &str) {
        println!("chaos {:7.1}s {what}", self.chaos.now());
    }

    /// A fault of one of the kinds `only` (indices in the table), or of any kind.
    fn pick_from(&mut self, only: &[usize]) -> Fault {
        let weights: [(u32, Pick); 9] = [
            (12, |r| r.member(false)),
            (10, |r| r.member(true)),
            (12, |r| r.handler(false)),
            (12, |r| r.handler(true)),
            (4, |_| Some(Fault::Wipe)),
            (10, |r| {
                let k = 1 + r.rng.below(HOSTS);
                let mut hosts: Vec<usize> = (0..HOSTS).collect();
                while hosts.len() > k {
                    hosts.remove(r.rng.below(hosts.len()));
                }
                Some(Fault::Tunnel(hosts))
            }),
            (20, |r| {
                let region = r.chaos.active_region()?;
                Some(Fault::Outage(region))
            }),
            (12, |r| {
                let active = r.chaos.active_region()?;
                let others: Vec<&str> = ["EU", "NAM", "APAC"]
                    .into_iter()
                    .filter(|x| *x != active)
                    .collect();
                Some(Fault::Switch(others[r.rng.below(others.len())].to_owned()))
            }),
            (8, |_| Some(Fault::Pause)),
        ];
        let weights: Vec<(u32, Pick)> = weights
            .into_iter()
            .enumerate()
            .filter(|(i, _)| only.is_empty() || only.contains(i))
            .map(|(_, w)| w)
            .collect();
        let total: u32 = weights.iter().map(|w| w.0).sum();
        // Outages and switches need the store's `active`: without it, after a while, a fault
        // that needs nothing.
        for _ in 0..50 {
            let mut roll = self.rng.below(total as usize) as u32;
            for (w, make) in &weights {
                if roll < *w {
                    if let Some(f) = make(self) {
                        return f;
                    }
                    break;
                }
                roll -= w;
            }
        }
        Fault::Tunnel(vec![self.rng.below(HOSTS)])
    }

    /// An etcd member to kill or stop: the raft leader half of the time.
    fn member(&mut self, stop: bool) -> Option<Fault> {
        let up: Vec<usize> = (0..self.chaos.cluster.size())
            .filter(|i| !self.down.contains(i))
            .collect();
        let leader = self
            .chaos
            .cluster
            .leader()
            .filter(|l| self.rng.chance(0.5) && up.contains(l));
        let i = leader.or_else(|| up.get(self.rng.below(up.len())).copied())?;
        let is_leader = leader.is_some();
        Some(if stop {
            Fault::MemberStop(i, is_leader)
        } else {
            Fault::MemberKill(i, is_leader)
        })
    }

    /// A handler to kill or stop: a slot holder or the fleet's leader when there is one, half
    /// of the time.
    fn handler(&mut self, stop: bool) -> Option<Fault> {
        let up: Vec<usize> = (0..HOSTS)
            .filter(|&i| self.chaos.hosts[i].running())
            .collect();
        let host_of = |name: &str| -> Option<usize> {
            let n: usize = name.trim_start_matches('h').parse().ok()?;
            up.contains(&n).then_some(n)
        };
        let mut target = None;
        if self.rng.chance(0.5) {
            let holders: Vec<usize> = self
                .chaos
                .keys("restarts/")
                .iter()
                .filter_map(|(k, _)| host_of(k.rsplit('/').next()?))
                .collect();
            target = holders.first().map(|&h| (h, "a slot holder"));
            if target.is_none() {
                target = self
                    .chaos
                    .key("leader")
                    .and_then(|l| host_of(&l))
                    .map(|h| (h, "the fleet's leader"));
            }
        }
        let (h, why) = target.or_else(|| Some((*up.get(self.rng.below(up.len()))?, "any")))?;
        Some(if stop {
            Fault::HandlerStop(h, why)
        } else {
            Fault::HandlerKill(h, why)
        })
    }

    fn store_state(&mut self) {
        let down = self.down.len() * 2 > self.chaos.cluster.size();
        if down && !self.store_down {
            self.chaos.record(What::StoreDown);
        }
        if !down && self.store_down {
            self.chaos.record(What::StoreUp);
        }
        self.store_down = down;
    }

    fn fleet_command(&mut self, args: &[&str]) -> Option<i32> {
        let out = self.chaos.hosts[0]
            .cmd
            .clone()
            .sub(args)
            .output_within(Duration::from_secs(60));
        out.code
    }

    fn inject(&mut self, fault: &Fault) {
        let text = fault.describe();
        *self.stats.faults.entry(fault.kind()).or_default() += 1;
        self.say(&format!("inject {text}"));
        self.chaos.record(What::Fault(text));
        let c = &mut *self.chaos;
        match fault {
            Fault::MemberKill(i, _) => {
                c.cluster.kill(*i);
                self.down.insert(*i);
                self.store_state();
            }
            Fault::MemberStop(i, _) => {
                c.cluster.signal(*i, "STOP");
                self.down.insert(*i);
                self.store_state();
            }
            Fault::HandlerKill(h, _) => {
                let host = &mut c.hosts[*h];
                host.signal("-KILL");
                host.past.extend(host.daemon.take());
            }
            Fault::HandlerStop(h, _) => {
                c.hosts[*h].signal("-STOP");
                c.hosts[*h].stopped = true;
            }
            Fault::Wipe => {
                if !self.store_down {
                    c.record(What::StoreDown);
                }
                c.cluster.wipe();
                self.down.clear();
                wait_serving(&c.cluster);
                self.store_down = false;
                self.chaos.record(What::StoreUp);
            }
            Fault::Tunnel(hosts) => {
                for &h in hosts {
                    c.hosts[h].tunnel.set_default(Mode::Refuse);
                }
            }
            Fault::Outage(region) => {
                for h in &c.hosts {
                    h.tunnel.set_region(region, Mode::Status(503));
                }
                let at = c.now();
                self.stats
                    .outages
                    .push((at, f64::MAX, region.clone(), false));
            }
            Fault::Switch(region) => {
                let code = self.fleet_command(&["switch", region, "--fleet"]);
                self.say(&format!("  switch --fleet {region}: exit {code:?}"));
            }
            Fault::Pause => {
                let code = self.fleet_command(&["pause", "--fleet"]);
                self.say(&format!("  pause --fleet: exit {code:?}"));
            }
        }
    }

    fn heal(&mut self, fault: &Fault) {
        let c = &mut *self.chaos;
        match fault {
            Fault::MemberKill(i, _) => {
                c.cluster.restart(*i);
                self.down.remove(i);
                self.store_state();
            }
            Fault::MemberStop(i, _) => {
                c.cluster.signal(*i, "CONT");
                self.down.remove(i);
                self.store_state();
            }
            Fault::HandlerKill(h, _) => {
                let host = &mut c.hosts[*h];
                if host.daemon.is_none() {
                    host.daemon = Some(host.cmd.spawn_daemon());
                }
            }
            Fault::HandlerStop(h, _) => {
                c.hosts[*h].signal("-CONT");
                c.hosts[*h].stopped = false;
            }
            Fault::Wipe | Fault::Switch(_) => {}
            Fault::Tunnel(hosts) => {
                for &h in hosts {
                    c.hosts[h].tunnel.set_default(Mode::Up);
                }
            }
            Fault::Outage(region) => {
                for h in &c.hosts {
                    h.tunnel.set_region(region, Mode::Up);
                }
                let at = c.now();
                if let Some(o) = self.stats.outages.last_mut() {
                    o.1 = at;
                }
            }
            Fault::Pause => {
                // The store may be down right now: asked again until it answers.
                let deadline = Instant::now() + 4 * LEASE + Duration::from_secs(20);
                while self.fleet_command(&["resume", "--fleet"]) != Some(0) {
                    assert!(Instant::now() < deadline, "resume --fleet never succeeded");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        let text = fault.describe();
        self.say(&format!("heal {text}"));
        self.chaos.record(What::Heal(text));
    }
}

/// Waits until every member of a new cluster serves.
fn wait_serving(cluster: &crate::support::etcd::EtcdCluster) {
    let body = serde_json::json!({"key": "eA=="});
    crate::support::wait_until(
        Duration::from_secs(30),
        "the wiped cluster to serve",
        || (0..cluster.size()).all(|i| cluster.post(i, "/v3/kv/range", &body).is_some()),
    );
}

/// Prints the figures of the run.
pub fn summary(chaos: &Chaos, history: &[Entry], stats: &Stats, violations: usize) {
    let faults: usize = stats.faults.values().sum();
    let kinds: Vec<String> = stats
        .faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let mut moves = (0, 0);
    let mut actives: Vec<(f64, String, String)> = Vec::new();
    for e in history {
        if let What::Store {
            key,
            value: Some(v),
            ..
        } = &e.what
            && key == "active"
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(v)
        {
            let reason = v["reason"].as_str().unwrap_or_default().to_owned();
            match reason.as_str() {
                "outage" => moves.0 += 1,
                "manual" => moves.1 += 1,
                _ => {}
            }
            let region = v["region"].as_str().unwrap_or_default().to_owned();
            println!(
                "chaos {:7.1}s store: active {region} epoch {} ({reason}, by {})",
                e.at,
                v["epoch"],
                v["by"].as_str().unwrap_or_default()
            );
            actives.push((e.at, region, reason));
        }
    }
    let restarts = history
        .iter()
        .filter(|e| matches!(e.what, What::Restart { .. }))
        .count();
    let exits: Vec<String> = history
        .iter()
        .filter_map(|e| match &e.what {
            What::Exit(text) => Some(format!("{:.1}s {text}", e.at)),
            _ => None,
        })
        .collect();
    let writes: Vec<(f64, usize, &str)> = history
        .iter()
        .filter_map(|e| match &e.what {
            What::EnvWrite { host, to, .. } => Some((e.at, *host, to.as_str())),
            _ => None,
        })
        .collect();
    println!(
        "chaos summary: seed {}, {:.1} min, {faults} faults ({}), {} automatic moves and {} \
         manual, {restarts} restarts, {} env writes, max {} concurrent restarts (cap {CAP}), \
         {} handler exit(s), {violations} violation(s)",
        chaos.seed,
        stats.secs / 60.0,
        kinds.join(", "),
        moves.0,
        moves.1,
        writes.len(),
        peak(history),
        exits.len(),
    );
    for exit in &exits {
        println!("chaos handler exit: {exit}");
    }
    // Convergence: from an outage's start to the last of the five hosts written for the move
    // it caused.
    for alone in [true, false] {
        let mut took: Vec<f64> = Vec::new();
        for (t0, healed, region, _) in stats.outages.iter().filter(|o| o.3 || !alone) {
            let Some((t_move, to, _)) = actives
                .iter()
                .find(|(at, r, reason)| at > t0 && r != region && reason == "outage")
            else {
                continue;
            };
            if t_move > healed {
                continue;
            }
            let mut last: BTreeMap<usize, f64> = BTreeMap::new();
            for (at, host, w) in &writes {
                if at > t0 && *at < t_move + 20.0 && w == to {
                    last.entry(*host).or_insert(*at);
                }
            }
            if last.len() == HOSTS {
                took.push(last.values().fold(0.0_f64, |a, b| a.max(*b)) - t0);
            }
        }
        took.sort_by(f64::total_cmp);
        if let (Some(min), Some(max)) = (took.first(), took.last()) {
            println!(
                "chaos convergence ({}): outage start -> last of {HOSTS} hosts written \
                 (threshold {THRESHOLD:?}, cap {CAP}, restarts of ~1 s): {} outages moved, \
                 min {min:.1}s, median {:.1}s, max {max:.1}s",
                if alone {
                    "outage alone"
                } else {
                    "every outage"
                },
                took.len(),
                took[took.len() / 2]
            );
        }
    }
    let mut settle = stats.settle.clone();
    settle.sort();
    if let Some(max) = settle.last() {
        println!(
            "chaos settle: {} rounds settled, median {:.1}s, max {:.1}s after the heal",
            settle.len(),
            settle[settle.len() / 2].as_secs_f64(),
            max.as_secs_f64()
        );
    }
}
