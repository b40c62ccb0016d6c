//! A deterministic simulation of the fleet protocol, in the manner of FoundationDB's and
//! TigerBeetle's simulators: N hosts, each the real [`Member`], over a model of etcd
//! (`store`), driven tick by tick (100 ms) by a seeded scheduler that loses and delays
//! messages, cuts hosts off, takes the store down (member and leader loss), pauses hosts
//! past their lease, crashes and restarts them, wipes the store, gives hosts local faults,
//! puts regions in real outage, and switches and pauses the fleet by hand. A checker
//! (`check`) asserts the invariants after every tick. A failing seed prints itself and its
//! trace; `FLEET_SIM_SEED=n` replays one seed and prints its trace.

mod act;
mod check;
mod host;
mod store;

use std::time::{Duration, Instant};

use crate::protocol::Settings;
use crate::quorum::Rule;
use crate::region::Region;

use check::Checker;
use host::Host;
use store::Etcd;

/// One tick of simulated time.
const TICK: Duration = Duration::from_millis(100);
/// In ticks: the lease, the poll, the outage threshold, a keep-alive, one program's call.
const TTL: u64 = 30;
const POLL: u64 = 5;
const THRESHOLD: u64 = 10;
const KEEP_ALIVE: u64 = TTL / 3;
const STEP: u64 = 2;
/// Faults are injected until `FAULTS_END`; the fleet then settles until `END`.
const FAULTS_END: u64 = 400;
const END: u64 = 650;

/// A small seeded generator (SplitMix64): the whole run follows from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` per mille.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

fn regions() -> Vec<Region> {
    ["EU", "NAM", "APAC"]
        .iter()
        .map(|n| Region::new(n, &format!("cloud.{}.ext.com", n.to_lowercase())).unwrap())
        .collect()
}

/// The world: the store, the hosts, the real outage, the clock.
pub struct World {
    pub rng: Rng,
    pub etcd: Etcd,
    pub hosts: Vec<Host>,
    pub regions: Vec<Region>,
    /// The region in real outage, since when.
    pub outage: Option<(usize, u64)>,
    pub settings: Settings,
    pub now: u64,
    pub base: Instant,
    pub trace: Vec<String>,
    /// Per mille: a message lost, a round delayed.
    pub loss: u64,
}

impl World {
    pub fn instant(&self) -> Instant {
        self.base + TICK * self.now as u32
    }

    /// Unix seconds, for the fleet's moves.
    pub fn unix(&self) -> u64 {
        1_700_000_000 + self.now / 10
    }

    pub fn say(&mut self, what: String) {
        self.trace.push(format!("{:>4} {what}", self.now));
    }

    /// Whether a message between a host and the store goes through now.
    pub fn reaches(&mut self, host: usize) -> bool {
        self.etcd.up(self.now)
            && self.hosts[host].cut_until <= self.now
            && !self.rng.chance(self.loss)
    }
}

/// Runs one seed: the checker's first violation, if any, and the trace.
pub fn run(seed: u64) -> (Result<(), String>, Vec<String>) {
    let mut rng = Rng(seed);
    let n = rng.range(3, 8) as usize;
    let max_restarts = rng.range(1, 3) as usize;
    let local = rng.chance(300).then(|| rng.range(0, n as u64) as usize);
    let settings = Settings {
        host: String::new(),
        rule: Rule {
            quorum: 0.5,
            min_voters: 2,
            max_moves_per_hour: 60,
            hold_down: TICK * THRESHOLD as u32,
        },
        max_restarts,
        lease_ttl: TICK * TTL as u32,
        local_on_loss: false,
    };
    let base = Instant::now();
    let loss = rng.range(0, 60);
    let mut world = World {
        rng,
        etcd: Etcd::default(),
        hosts: Vec::new(),
        regions: regions(),
        outage: None,
        settings: settings.clone(),
        now: 0,
        base,
        trace: Vec::new(),
        loss,
    };
    for i in 0..n {
        let mut s = settings.clone();
        s.host = format!("h{i}");
        s.local_on_loss = local == Some(i);
        world.hosts.push(Host::new(s, regions()));
    }
    world.say(format!(
        "seed {seed}: {n} hosts, max_concurrent_restarts {max_restarts}, local host {local:?}, loss {loss}‰"
    ));
    let mut checker = Checker::new(&world);
    while world.now < END {
        if world.now < FAULTS_END {
            inject(&mut world);
        } else if world.now == FAULTS_END {
            heal(&mut world);
        }
        world.etcd.expire(world.now);
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = world.rng.range(0, i as u64 + 1) as usize;
            order.swap(i, j);
        }
        for i in order {
            act::step(&mut world, i);
        }
        if let Err(e) = checker.after_tick(&world) {
            return (Err(e), world.trace);
        }
        world.now += 1;
    }
    (checker.at_end(&world), world.trace)
}

/// The faults of one tick, each with a small chance.
fn inject(w: &mut World) {
    let n = w.hosts.len() as u64;
    let now = w.now;
    if w.rng.chance(6) {
        let r = w.rng.range(0, 3) as usize;
        if w.outage.is_none_or(|(o, _)| o != r) {
            w.outage = Some((r, now));
            let name = w.regions[r].name.clone();
            w.say(format!("region {name} in real outage"));
        }
    } else if w.outage.is_some() && w.rng.chance(8) {
        w.outage = None;
        w.say("the outage ends".to_string());
    }
    if w.rng.chance(4) {
        let h = w.rng.range(0, n) as usize;
        let until = now + w.rng.range(5, 90);
        w.hosts[h].cut_until = until;
        w.say(format!("h{h} cut off from the store until {until}"));
    }
    if w.rng.chance(3) {
        let until = now + w.rng.range(3, 90);
        w.etcd.down_until = w.etcd.down_until.max(until);
        w.say(format!(
            "the store loses its quorum or leader until {until}"
        ));
    }
    if w.rng.chance(2) {
        let h = w.rng.range(0, n) as usize;
        let until = now + w.rng.range(TTL + 5, 2 * TTL);
        w.hosts[h].paused_until = until;
        w.say(format!("h{h} paused (SIGSTOP) until {until}"));
    }
    if w.rng.chance(2) {
        let h = w.rng.range(0, n) as usize;
        let until = now + w.rng.range(3, 40);
        host::crash(w, h, until);
    }
    if w.rng.chance(1) {
        w.etcd.wipe();
        w.say("the store is wiped".to_string());
    }
    if w.rng.chance(3) {
        let h = w.rng.range(0, n) as usize;
        let host = &mut w.hosts[h];
        host.local_fault = host.local_fault.is_none().then_some(now);
        let on = host.local_fault.is_some();
        w.say(format!(
            "h{h} local fault {}",
            if on { "begins" } else { "ends" }
        ));
    }
    if w.rng.chance(2) && w.etcd.up(now) {
        let r = w.rng.range(0, 3) as usize;
        let to = w.etcd.switch(&w.regions[r].name.clone());
        w.say(format!("switch --fleet {} (epoch {})", to.region, to.epoch));
    }
    if w.rng.chance(2) && w.etcd.up(now) {
        if w.etcd.snapshot().paused.is_some() {
            w.etcd.delete("pause");
            w.say("resume --fleet".to_string());
        } else {
            let _ = w.etcd.put("pause", store::Val::Pause, 0);
            w.say("pause --fleet".to_string());
        }
    }
}

/// The end of the faults: every host back, the store up and unpaused, messages delivered.
fn heal(w: &mut World) {
    let now = w.now;
    for h in &mut w.hosts {
        h.cut_until = now;
        h.paused_until = h.paused_until.min(now);
        h.down_until = h.down_until.min(now);
        h.local_fault = None;
    }
    w.etcd.down_until = now;
    w.etcd.delete("pause");
    w.loss = 0;
    w.say("faults end: every host and the store back".to_string());
}

/// How many seeds `cargo test` runs.
const SEEDS: u64 = 2000;

fn fail(seed: u64, error: &str, trace: &[String]) -> ! {
    let tail = trace.len().saturating_sub(80);
    panic!(
        "seed {seed} failed: {error}\nreplay: FLEET_SIM_SEED={seed} cargo test -p failover-kernel --lib protocol::sim\n--- trace (last {} lines)\n{}",
        trace.len() - tail,
        trace[tail..].join("\n")
    );
}

#[test]
fn the_invariants_hold_over_every_seed() {
    if let Some(seed) = std::env::var("FLEET_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let (result, trace) = run(seed);
        println!("{}", trace.join("\n"));
        if let Err(e) = result {
            fail(seed, &e, &trace);
        }
        return;
    }
    for seed in 0..SEEDS {
        if let (Err(e), trace) = run(seed) {
            fail(seed, &e, &trace);
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    let first = run(7);
    let again = run(7);
    assert!(first.1.len() > 10, "{:?}", first.1);
    assert_eq!(first, again);
}
