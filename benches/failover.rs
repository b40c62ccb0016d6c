//! `cargo bench --bench failover`: what the handler costs and adds, printed as Markdown tables.
//!
//! - failover time minus (threshold + interval) per kind of outage: the overhead we add;
//! - the restart sequence with a real supervisord and three programs, through XML-RPC and
//!   through supervisorctl, and its processes; beside it, the floor: the same six XML-RPC
//!   calls made by a minimal client (raw HTTP on the unix socket) in the same run;
//! - the daemon's memory after 1,000 probes and its CPU time per probe;
//! - bytes on the wire per probe;
//! - the daemon at rest: RSS, threads, CPU per probe and bytes written per hour while every
//!   probe is healthy.
//!
//! Not a test: it asserts only that each measurement happened. `BENCH_TRIALS` sets the trials
//! per figure (default 7); `BENCH_ONLY=rest` runs the last section alone (also in a debug build:
//! `cargo test --bench failover -- --bench`), with `BENCH_REST_INTERVAL_MS` (default 20) and
//! `BENCH_REST_PROBES` (default 200).

#[allow(dead_code, unused_imports)]
#[path = "../tests/suite/support/mod.rs"]
mod common;

use common::stack::which;
use common::{Cmd, FakeTunnel, Mode, Stack, StackOptions, TestDir, env_for, timestamp};
use failover_handler::adapters::http::TlsSettings;
use failover_handler::adapters::http::{HttpProbe, Probe};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const REGIONS: [&str; 3] = ["NAM", "EU", "APAC"];
const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 150;
const THRESHOLD_MS: u64 = 1000;
const WAIT: Duration = Duration::from_secs(30);

fn trials() -> usize {
    std::env::var("BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7)
}

fn next(region: &str) -> &'static str {
    let i = REGIONS.iter().position(|r| *r == region).unwrap();
    REGIONS[(i + 1) % REGIONS.len()]
}

/// Median and max of a list of milliseconds.
fn median_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, *v.last().unwrap())
}

fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One outage of NAM against a fake tunnel, with a fresh daemon (flap damping holds back
/// repeated automatic switches, so each trial is a daemon's first). Returns (failover ms,
/// first failed probe ms) after the injection.
fn failover_trial(mode: Mode) -> (f64, f64) {
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--interval", &format!("{INTERVAL_MS}ms"))
        .flag("--timeout", &format!("{TIMEOUT_MS}ms"))
        .flag("--threshold", &format!("{THRESHOLD_MS}ms"))
        .spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    wait_until("healthy probes", || tunnel.requests_in("NAM") >= 2);
    // The new mode applies to the next request as soon as it is set; `set_region` then waits
    // for the listener to follow, so the outage begins just before it returns.
    let injected = SystemTime::now();
    tunnel.set_region("NAM", mode);
    let written = d.wait_for(
        |v| v["event"] == "env_file_written" && v["region"] == "EU",
        WAIT,
    );
    let first_failure = d.wait_for_event("probe_failed", WAIT);
    d.finish();
    (
        ms_between(injected, timestamp(&written)),
        ms_between(injected, timestamp(&first_failure)),
    )
}

fn section_failover(n: usize) {
    println!(
        "### Failover overhead\n\nA fresh daemon per outage against an in-process HTTPS fake of the tunnel (stand-in supervisorctl); \
         interval {INTERVAL_MS}ms, timeout {TIMEOUT_MS}ms, threshold {THRESHOLD_MS}ms; {n} outages of each kind.\n\
         *failover*: from the injection to the env file naming the next region (log timestamps, ms).\n\
         Each outage begins just after a healthy probe, the worst phase: the first failed probe comes a whole \
         interval later. *overhead*: failover − (threshold + interval), the time added beyond that worst case \
         (for a hang it includes the probe timeout the last probe waits for). A refused connection to the \
         local tunnel is the tunnel's fault, not the region's: the programs are restarted in place after one \
         threshold and the switch comes after a second, by design, so that row's bound is \
         2 × threshold + interval.\n"
    );
    println!(
        "| outage | first failed probe, median | failover median | failover max | overhead median | overhead max |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, mode, thresholds) in [
        ("HTTP 503", Mode::Status(503), 1),
        (
            "refused (local tunnel: restart in place, then switch)",
            Mode::Refuse,
            2,
        ),
        ("reset", Mode::Reset, 1),
        ("hang (probe times out)", Mode::Hang, 1),
    ] {
        let bound = (thresholds * THRESHOLD_MS + INTERVAL_MS) as f64;
        let results: Vec<(f64, f64)> = (0..n).map(|_| failover_trial(mode)).collect();
        let (detect, _) = median_max(results.iter().map(|r| r.1).collect());
        let (med, max) = median_max(results.iter().map(|r| r.0).collect());
        println!(
            "| {name} | {detect:.0} ms | {med:.0} ms | {max:.0} ms | {:+.0} ms | {:+.0} ms |",
            med - bound,
            max - bound
        );
    }
    println!();
}

/// One manual switch on a real supervisord.
struct Switch {
    /// The 6 supervisorctl calls, as the handler reports them.
    restart_ms: f64,
    /// The whole `switch` command.
    wall_ms: f64,
    supervisorctl_processes: usize,
    program_processes: usize,
    /// Every program started is a child of supervisord itself.
    direct_children: bool,
}

/// One XML-RPC call made the plainest way: a fresh connection to the unix socket, the request
/// written whole, the answer read to its Content-Length.
fn raw_call(sock: &Path, method: &str, program: &str) {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>{method}</methodName><params>\
         <param><value><string>{program}</string></value></param>\
         <param><value><boolean>1</boolean></value></param></params></methodCall>\n"
    );
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "supervisord closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let len: usize = text[..head_end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        if got.len() >= head_end + 4 + len {
            assert!(text.contains("<boolean>1</boolean>"), "{text}");
            return;
        }
    }
}

/// The six calls of a restart through `raw_call`: the floor of any XML-RPC client (ms).
fn floor_restart(stack: &Stack) -> f64 {
    let sock = stack.dir.path().join("supervisor.sock");
    let programs = ["app:application", "app:cloud-client", "app:stunnel"];
    let started = Instant::now();
    for p in programs {
        raw_call(&sock, "supervisor.stopProcess", p);
    }
    for p in programs.iter().rev() {
        raw_call(&sock, "supervisor.startProcess", p);
    }
    let took = started.elapsed().as_secs_f64() * 1000.0;
    stack.wait_tunnel_listening();
    took
}

/// Switches by hand `n` times on a real supervisord restarting `via` (`None` when it is not
/// installed); with `floor`, each switch is followed by a restart through `floor_restart`, so
/// that both see the same load.
fn restart_trials(
    startsecs: u32,
    via: &'static str,
    n: usize,
    floor: bool,
) -> Option<(Vec<Switch>, Vec<f64>)> {
    let counter = tempfile::tempdir().unwrap();
    let calls = counter.path().join("calls");
    let wrapper = counter.path().join("supervisorctl");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec supervisorctl \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let stack = Stack::start(StackOptions {
        startsecs,
        supervisorctl: wrapper.display().to_string(),
        via,
        ..StackOptions::default()
    })?;
    let supervisord_pid: u32 = fs::read_to_string(stack.dir.path().join("supervisord.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let count = || {
        fs::read_to_string(&calls)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let mut region = "NAM";
    let mut out = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..n {
        region = next(region);
        let (calls_before, starts_before) = (count(), stack.starts().len());
        let started = Instant::now();
        let result = stack
            .handler_cmd()
            .sub(&["switch", region])
            .command()
            .output()
            .unwrap();
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        assert!(result.status.success(), "{result:?}");
        let reported: f64 = String::from_utf8_lossy(&result.stdout)
            .split("restarted in ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        // A program records its start just after supervisord spawns it: a restart through
        // XML-RPC can be over before the last one has.
        wait_until("the programs to record their start", || {
            stack.starts().len() >= starts_before + 3
        });
        let starts = stack.starts();
        let direct = starts[starts_before..].iter().all(|s| {
            let stat = fs::read_to_string(format!("/proc/{}/stat", s.pid)).unwrap_or_default();
            let after_name = stat.rsplit(')').next().unwrap_or_default();
            after_name.split_whitespace().nth(1) == Some(&supervisord_pid.to_string())
        });
        out.push(Switch {
            restart_ms: reported,
            wall_ms: wall,
            supervisorctl_processes: count() - calls_before,
            program_processes: starts.len() - starts_before,
            direct_children: direct,
        });
        stack.wait_tunnel_listening();
        if floor {
            let before = stack.starts().len();
            floors.push(floor_restart(&stack));
            wait_until("the programs to record their start", || {
                stack.starts().len() >= before + 3
            });
        }
    }
    Some((out, floors))
}

fn section_restart(n: usize) {
    println!(
        "### Restart sequence on a real supervisord\n\n`failover-handler switch` on a supervisord of its own with stunnel, \
         a cloud-client and an application (each `bash -c '. env && exec …'`); {n} switches per row. \
         *restart*: the 6 stop/start calls as the handler times them; *switch*: the whole command, \
         from its start to its exit. Processes: one per supervisorctl call (counted by a wrapper that execs it) \
         plus one per program started (recorded by each program; each is a direct child of supervisord: \
         `bash` execs the program in place). *XML-RPC* is `restart.via = \"xmlrpc\"` (what `auto` takes \
         with a plain supervisorctl); *supervisorctl* is `restart.via = \"supervisorctl\"`.\n"
    );
    println!(
        "| path | supervisord `startsecs` | restart median | restart max | switch median | switch max | processes spawned per restart |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    let mut floors = Vec::new();
    let mut xmlrpc_restart = Vec::new();
    for (via, startsecs) in [
        ("xmlrpc", 0),
        ("supervisorctl", 0),
        ("xmlrpc", 1),
        ("supervisorctl", 1),
    ] {
        let label = if via == "xmlrpc" {
            "XML-RPC"
        } else {
            "supervisorctl"
        };
        let Some((results, floor)) = restart_trials(startsecs, via, n, via == "xmlrpc") else {
            println!(
                "| {label} | {startsecs} | skipped: supervisord or stunnel is not installed | | | | |"
            );
            continue;
        };
        let (rmed, rmax) = median_max(results.iter().map(|r| r.restart_ms).collect());
        let (wmed, wmax) = median_max(results.iter().map(|r| r.wall_ms).collect());
        if via == "xmlrpc" {
            floors.push((startsecs, median_max(floor)));
            xmlrpc_restart.push((startsecs, rmed));
        }
        let procs: Vec<String> = results
            .iter()
            .map(|r| format!("{}", r.supervisorctl_processes + r.program_processes))
            .collect();
        let (ctl, programs) = (
            results[0].supervisorctl_processes,
            results[0].program_processes,
        );
        let direct = results.iter().all(|r| r.direct_children);
        println!(
            "| {label} | {startsecs}{} | {rmed:.0} ms | {rmax:.0} ms | {wmed:.0} ms | {wmax:.0} ms | {} ({ctl} supervisorctl + {programs} programs{}) |",
            if startsecs == 1 { " (default)" } else { "" },
            if procs.iter().all(|p| *p == procs[0]) {
                procs[0].clone()
            } else {
                procs.join("/")
            },
            if direct {
                ""
            } else {
                "; some not direct children"
            }
        );
    }
    println!();
    if floors.is_empty() {
        return;
    }
    println!(
        "The floor: the same six calls (`stopProcess` ×3, `startProcess` ×3, wait = true) made by a minimal \
         client in this process (a fresh unix-socket connection per call, the request written whole, the \
         answer read to its length) on the same supervisord, one right after each XML-RPC switch above.\n"
    );
    println!(
        "| supervisord `startsecs` | floor median | floor max | handler's XML-RPC restart median | ratio |"
    );
    println!("|---|---:|---:|---:|---:|");
    for ((startsecs, (fmed, fmax)), (_, rmed)) in floors.iter().zip(&xmlrpc_restart) {
        println!(
            "| {startsecs} | {fmed:.1} ms | {fmax:.1} ms | {rmed:.0} ms | {:.2}× |",
            rmed / fmed
        );
    }
    println!();
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (VmRSS kB, VmHWM kB, utime + stime in ticks) of a process.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (kb("VmRSS:"), kb("VmHWM:"), ticks)
}

fn section_resources() {
    const PROBES: usize = 1000;
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--interval", "5ms")
        .flag("--timeout", "1s")
        .flag("--threshold", "10m")
        .spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    wait_until("10 probes", || tunnel.request_count() >= 10);
    let (rss0, _, ticks0) = usage(d.pid());
    let t0 = Instant::now();
    let start = tunnel.request_count();
    wait_until("1,000 probes", || tunnel.request_count() >= start + PROBES);
    let (rss, hwm, ticks) = usage(d.pid());
    let took = t0.elapsed();
    let probes = tunnel.request_count() - start;
    let cpu_ms = (ticks - ticks0) as f64 * 1000.0 / clock_ticks();
    d.finish();
    println!(
        "### The daemon's resources\n\nThe daemon probing an in-process HTTPS fake of the tunnel every 5ms \
         (a fresh TCP + TLS 1.3 connection per probe, as in production), from its 10th probe on.\n"
    );
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| RSS after 10 probes (VmRSS) | {:.1} MiB |",
        rss0 as f64 / 1024.0
    );
    println!(
        "| RSS after {} more probes (VmRSS) | {:.1} MiB |",
        probes,
        rss as f64 / 1024.0
    );
    println!("| peak RSS (VmHWM) | {:.1} MiB |", hwm as f64 / 1024.0);
    println!(
        "| CPU time per probe (utime + stime over {probes} probes, {:.1}s) | {:.2} ms |",
        took.as_secs_f64(),
        cpu_ms / probes as f64
    );
    println!(
        "| CPU at the production cadence (one probe per 10s) | {:.3} % of one core |",
        cpu_ms / probes as f64 / 10_000.0 * 100.0
    );
    println!();
}

/// (rchar, wchar, write_bytes) of a process: bytes it read and wrote through system calls, and
/// bytes it caused to be written to storage.
fn io(pid: u32) -> (u64, u64, u64) {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let field = |key: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    (field("rchar:"), field("wchar:"), field("write_bytes:"))
}

/// The names of a process's threads.
fn threads(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    names.sort();
    names
}

/// The daemon at rest: the default settings plus `--metrics-addr`, every probe healthy.
fn section_at_rest() {
    let interval_ms: u64 = std::env::var("BENCH_REST_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let probes_wanted: usize = std::env::var("BENCH_REST_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--interval", &format!("{interval_ms}ms"))
        .flag("--timeout", "1s")
        .flag("--threshold", "10m")
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    // Settled: the first results are in the status file (written at most once a second).
    wait_until("10 probes", || tunnel.request_count() >= 10);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, _, ticks0) = usage(d.pid());
    let (_, wchar0, disk0) = io(d.pid());
    let t0 = Instant::now();
    let start = tunnel.request_count();
    let deadline =
        Instant::now() + WAIT + Duration::from_millis(interval_ms * probes_wanted as u64);
    while tunnel.request_count() < start + probes_wanted {
        assert!(Instant::now() < deadline, "{probes_wanted} probes");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Halfway to the next probe: what the daemon keeps between probes.
    std::thread::sleep(Duration::from_millis(interval_ms / 2));
    let threads = threads(d.pid());
    let (rss, hwm, ticks) = usage(d.pid());
    let (_, wchar, disk) = io(d.pid());
    let took = t0.elapsed().as_secs_f64();
    let probes = tunnel.request_count() - start;
    d.finish();
    let cpu_ms = (ticks - ticks0) as f64 * 1000.0 / clock_ticks();
    let per_hour = |bytes: u64| bytes as f64 / took * 3600.0;
    println!(
        "### The daemon at rest\n\nThe default settings plus `--metrics-addr`, probing an in-process HTTPS \
         fake of the tunnel every {interval_ms}ms (a fresh TCP + TLS 1.3 connection, verified, per probe), \
         every probe healthy; from /proc/<pid>/status, /stat and /io once the first results are in.\n"
    );
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| RSS after {probes} more probes (VmRSS) | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    println!("| peak RSS (VmHWM) | {:.1} MiB |", hwm as f64 / 1024.0);
    println!(
        "| threads halfway between two probes | {} ({}) |",
        threads.len(),
        threads.join(", ")
    );
    println!(
        "| CPU time per probe (utime + stime over {probes} probes, {took:.1}s) | {:.2} ms |",
        cpu_ms / probes as f64
    );
    println!(
        "| bytes written per hour, all writes incl. log lines (wchar) | {:.0} |",
        per_hour(wchar - wchar0)
    );
    println!(
        "| bytes written to storage per hour (write_bytes) | {:.0} |",
        per_hour(disk - disk0)
    );
    println!();
}

fn section_bytes(n: usize) {
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let url = common::probe_url(tunnel.port())
        .replace("{org_id}", "org1")
        .replace("{txn_id}", "txn1");
    let probe = HttpProbe::new(
        url::Url::parse(&url).unwrap(),
        vec![(
            http::HeaderName::from_static("x-sig-sha256"),
            http::HeaderValue::from_static(common::SIG_SHA256),
        )],
        Duration::from_secs(2),
        &TlsSettings {
            ca_cert: Some(dir.ca_pem()),
            ..TlsSettings::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reports: Vec<_> = (0..n.max(10))
        .map(|_| runtime.block_on(probe.probe()))
        .collect();
    assert!(reports.iter().all(|r| r.is_ok()), "{reports:?}");
    let (sent, _) = median_max(reports.iter().map(|r| r.bytes_sent as f64).collect());
    let (received, _) = median_max(reports.iter().map(|r| r.bytes_received as f64).collect());
    println!(
        "### Bytes on the wire per probe\n\nThe probe's own counters (TCP payload: TLS records, no IP/TCP headers), \
         median of {} healthy probes over HTTPS (a fresh TLS 1.3 connection each) with the default header; \
         the fake tunnel presents an ECDSA P-256 certificate: a tunnel with a larger certificate adds the \
         difference in size to the bytes received.\n",
        reports.len()
    );
    println!("| direction | bytes per probe |");
    println!("|---|---:|");
    println!("| sent | {sent:.0} |");
    println!("| received | {received:.0} |");
    println!("| total | {:.0} |", sent + received);
    println!(
        "| per day at one probe per 10s | {:.1} MB |",
        (sent + received) * 8640.0 / 1e6
    );
    println!();
}

fn machine() {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version = |cmd: &str, arg: &str| {
        which(&[cmd])
            .and_then(|p| Command::new(p).arg(arg).output().ok())
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines()
                    .find(|l| l.contains(cmd.trim_end_matches('4')) || l.contains(char::is_numeric))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "not installed".into())
    };
    println!("## failover-handler benchmark\n");
    println!(
        "Machine: {nproc} CPUs (nproc), {cpu}, Linux {}; supervisord {}; {}. Build: `cargo bench` (release profile).\n",
        kernel.trim(),
        version("supervisord", "--version"),
        version("stunnel4", "-version")
            .split(" on ")
            .next()
            .unwrap_or("")
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` builds and runs this without `--bench`: nothing to test.
        println!("benchmark: run it with `cargo bench --bench failover`");
        return;
    }
    machine();
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "rest") {
        section_at_rest();
        return;
    }
    let n = trials();
    section_failover(n);
    section_restart(n);
    section_resources();
    section_bytes(20);
    section_at_rest();
}
