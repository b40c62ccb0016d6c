//! What a fleet costs at rest: three handlers probing every 100 ms on a real three-member
//! etcd keep one connection per endpoint (and one more for the watch), follow the fleet's
//! keys through the watch stream and read nothing, while a change written by another
//! host still reaches each of them at once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::etcd::EtcdCluster;
use crate::support::{Cmd, Daemon, FakeTunnel, HeavySlot, TestDir, wait_until};

const HOSTS: usize = 3;

struct Host {
    dir: TestDir,
    tunnel: FakeTunnel,
    cmd: Cmd,
    daemon: Daemon,
}

impl Host {
    fn region(&self) -> Option<String> {
        let env = self.dir.read_env()?;
        env.lines()
            .find_map(|l| l.strip_prefix("export EXT_REGION="))
            .map(str::to_owned)
    }
}

/// The cluster and three handlers on EU, settled: a leader, `active` = EU, every view.
fn rest_fleet(name: &str) -> (HeavySlot, EtcdCluster, Vec<Host>) {
    let slot = HeavySlot::take();
    let cluster = EtcdCluster::start(3);
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| {
            let dir = TestDir::with_env("EU");
            let tunnel = FakeTunnel::start(&dir);
            let text = format!(
                "[fleet]\nendpoints = {}\nname = \"{name}\"\nhost = \"h{i}\"\nmin_voters = 2\n\
                 max_concurrent_restarts = {HOSTS}\nlease_ttl = \"3s\"\n",
                cluster.endpoints_toml()
            );
            let config = dir.write_file("fleet.toml", &text);
            let cmd = Cmd::new(&dir)
                .tunnel_in(&tunnel, "EU")
                .flag("--config", config.to_str().unwrap());
            let daemon = cmd.spawn_daemon();
            daemon.wait_for_event("daemon_started", Duration::from_secs(10));
            Host {
                dir,
                tunnel,
                cmd,
                daemon,
            }
        })
        .collect();
    let prefix = format!("/failover-handler/{name}/");
    wait_until(
        Duration::from_secs(15),
        "a leader, active = EU, every view",
        || {
            let keys = cluster.range(&prefix);
            let has = |k: &str| keys.iter().any(|(key, _)| *key == format!("{prefix}{k}"));
            has("leader")
                && keys
                    .iter()
                    .any(|(k, v)| *k == format!("{prefix}active") && v.contains("\"EU\""))
                && keys
                    .iter()
                    .filter(|(k, _)| k.starts_with(&format!("{prefix}views/")))
                    .count()
                    == HOSTS
        },
    );
    (slot, cluster, hosts)
}

/// Waits until every host has probed `n` more times.
fn probes_pass(hosts: &[Host], n: usize) {
    let before: Vec<usize> = hosts.iter().map(|h| h.tunnel.request_count()).collect();
    wait_until(Duration::from_secs(60), &format!("{n} more probes"), || {
        hosts
            .iter()
            .zip(&before)
            .all(|(h, b)| h.tunnel.request_count() >= b + n)
    });
}

/// The client ports of the cluster's members.
fn client_ports(cluster: &EtcdCluster) -> Vec<u16> {
    cluster
        .endpoints()
        .iter()
        .map(|e| e.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

/// One line of /proc/net/tcp: (local port, remote port, state, inode).
fn tcp_sockets() -> Vec<(u16, u16, u8, u64)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
            Some((
                port(f.get(1)?)?,
                port(f.get(2)?)?,
                u8::from_str_radix(f.get(3)?, 16).ok()?,
                f.get(9)?.parse().ok()?,
            ))
        })
        .collect()
}

/// The socket inodes process `pid` holds.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Each handler's TCP connections to the members, as (local port, member port), and the
/// connections to the members closed by their client and still in TIME_WAIT.
fn etcd_connections(ports: &[u16], hosts: &[Host]) -> (Vec<BTreeSet<(u16, u16)>>, usize) {
    let sockets = tcp_sockets();
    let per_host = hosts
        .iter()
        .map(|h| {
            let inodes = socket_inodes(h.daemon.pid());
            sockets
                .iter()
                .filter(|(_, remote, _, inode)| ports.contains(remote) && inodes.contains(inode))
                .map(|(local, remote, _, _)| (*local, *remote))
                .collect()
        })
        .collect();
    const TIME_WAIT: u8 = 6;
    let closed = sockets
        .iter()
        .filter(|(_, remote, state, _)| *state == TIME_WAIT && ports.contains(remote))
        .count();
    (per_host, closed)
}

/// The Range requests `members` have served.
fn ranges(cluster: &EtcdCluster, members: std::ops::Range<usize>) -> f64 {
    members
        .map(|i| cluster.metric(i, "etcd_debugging_mvcc_range_total", ""))
        .sum()
}

/// `switch --fleet NAM` from host 0; every host is on NAM soon after.
fn switch_reaches_every_host(hosts: &[Host]) {
    let out = hosts[0]
        .cmd
        .clone()
        .sub(&["switch", "NAM", "--fleet"])
        .exits(0);
    assert!(out.stdout.contains("NAM"), "{out:?}");
    let written = Instant::now();
    wait_until(Duration::from_secs(2), "every host on NAM", || {
        hosts.iter().all(|h| h.region().as_deref() == Some("NAM"))
    });
    eprintln!(
        "every host on NAM {:?} after switch --fleet",
        written.elapsed()
    );
}

#[test]
fn a_fleet_at_rest_reads_nothing_and_keeps_its_connections() {
    let name = format!("rest{}", std::process::id());
    let (_slot, cluster, hosts) = rest_fleet(&name);
    let ports = client_ports(&cluster);
    // Past the start: a few lease keep-alives (every second) on every host.
    probes_pass(&hosts, 20);
    let (before, closed_before) = etcd_connections(&ports, &hosts);
    let reads_before = ranges(&cluster, 0..3);
    // Fifty probes and five lease keep-alives on each host.
    probes_pass(&hosts, 50);
    let reads = ranges(&cluster, 0..3) - reads_before;
    let (after, closed_after) = etcd_connections(&ports, &hosts);
    assert_eq!(
        closed_after.saturating_sub(closed_before),
        0,
        "connections to etcd closed by a handler at rest: before {before:?}, after {after:?}"
    );
    assert_eq!(
        before, after,
        "a handler at rest opened or closed connections"
    );
    for (i, conns) in after.iter().enumerate() {
        for port in &ports {
            let n = conns.iter().filter(|(_, p)| p == port).count();
            assert!(
                n <= 2,
                "h{i} holds {n} connections to member {port}: {conns:?}"
            );
        }
    }
    assert_eq!(reads, 0.0, "Range requests served to a fleet at rest");
    // A change another writer makes reaches every host at once.
    switch_reaches_every_host(&hosts);
}

#[test]
fn a_watch_broken_by_its_member_dying_is_read_and_watched_again() {
    let name = format!("rewatch{}", std::process::id());
    let (_slot, mut cluster, hosts) = rest_fleet(&name);
    probes_pass(&hosts, 20);
    // Every handler's calls and watch begin on the first member: it dies.
    cluster.kill(0);
    probes_pass(&hosts, 20);
    let reads_before = ranges(&cluster, 1..3);
    probes_pass(&hosts, 30);
    let reads = ranges(&cluster, 1..3) - reads_before;
    assert_eq!(reads, 0.0, "Range requests once the watch is back");
    switch_reaches_every_host(&hosts);
}

/// A process's CPU time (utime + stime, in clock ticks) and RSS (KiB).
fn cpu_and_rss(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (ticks, rss)
}

/// The figures of docs/fleet.md on the cost at rest: etcd reads, writes and lease renewals
/// per host per hour for three hosts probing every 100 ms, and each handler's CPU and RSS
/// beside three handlers without a fleet. Run by scripts/fleet-bench.sh.
#[test]
#[ignore = "a benchmark: scripts/fleet-bench.sh"]
fn bench_a_fleet_at_rest() {
    let window = Duration::from_secs(
        std::env::var("FLEET_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let name = format!("bench{}", std::process::id());
    let (_slot, cluster, hosts) = rest_fleet(&name);
    let alone: Vec<(TestDir, FakeTunnel, Daemon)> = (0..HOSTS)
        .map(|_| {
            let dir = TestDir::with_env("EU");
            let tunnel = FakeTunnel::start(&dir);
            let daemon = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();
            daemon.wait_for_event("daemon_started", Duration::from_secs(10));
            (dir, tunnel, daemon)
        })
        .collect();
    probes_pass(&hosts, 20);
    let sum = |name: &str| -> f64 { (0..3).map(|i| cluster.metric(i, name, "")).sum() };
    let pids = |fleet: bool| -> Vec<u32> {
        if fleet {
            hosts.iter().map(|h| h.daemon.pid()).collect()
        } else {
            alone.iter().map(|(_, _, d)| d.pid()).collect()
        }
    };
    let cpu = |fleet: bool| -> u64 { pids(fleet).iter().map(|&p| cpu_and_rss(p).0).sum() };
    let (reads0, renewals0) = (
        sum("etcd_debugging_mvcc_range_total"),
        sum("etcd_debugging_lease_renewed_total"),
    );
    let revision0 = cluster.revision();
    let (cpu_fleet0, cpu_alone0) = (cpu(true), cpu(false));
    let started = Instant::now();
    std::thread::sleep(window);
    let (cpu_fleet, cpu_alone) = (cpu(true) - cpu_fleet0, cpu(false) - cpu_alone0);
    let took = started.elapsed().as_secs_f64();
    // The revision read above is one Range of this benchmark's own.
    let reads = sum("etcd_debugging_mvcc_range_total") - reads0 - 1.0;
    let renewals = sum("etcd_debugging_lease_renewed_total") - renewals0;
    let writes = (cluster.revision() - revision0) as f64;
    let hour = |n: f64| n / HOSTS as f64 * 3600.0 / took;
    let ticks = 100.0;
    let rss = |fleet: bool| -> f64 {
        let pids = pids(fleet);
        pids.iter().map(|&p| cpu_and_rss(p).1 as f64).sum::<f64>() / pids.len() as f64 / 1024.0
    };
    println!(
        "at rest: {HOSTS} hosts probing every 100 ms, lease 3 s, {took:.0} s: per host per hour \
         {:.0} reads (Range), {:.0} writes, {:.0} lease renewals",
        hour(reads),
        hour(writes),
        hour(renewals)
    );
    println!(
        "at rest: per handler, CPU {:.2}% with the fleet, {:.2}% without; RSS {:.1} MiB with, {:.1} MiB without",
        cpu_fleet as f64 / ticks / took / HOSTS as f64 * 100.0,
        cpu_alone as f64 / ticks / took / HOSTS as f64 * 100.0,
        rss(true),
        rss(false)
    );
    assert_eq!(reads, 0.0);
}
