//! The fault matrix: each fault injected for real (sockets on 127.0.0.1, real processes, real
//! mounts) and what a user then sees: log lines with their event and error_kind, exit codes,
//! the env file's bytes, the supervisorctl calls. docs/faults.md has the table.

use crate::support::{
    Cert, Cmd, Daemon, FakeTunnel, HUGE_BODY, Mode, TestDir, Tmpfs, between, env_for, in_region,
    in_region_with, peak_rss_kib, restart_order, settled_daemon, text, wait_for_probes, wait_until,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const THRESHOLD: Duration = Duration::from_secs(1);
/// How far a log line's timestamp may trail the instant the daemon measured (a loaded machine).
const LOG_SLACK: Duration = Duration::from_millis(50);

fn message(line: &Value) -> &str {
    line["message"].as_str().unwrap_or_default()
}

/// Checks the first failed probe (its kind and a word of its detail) and that the failover
/// came no sooner than the threshold after it; returns the failover line.
fn assert_failed_then_failed_over(d: &Daemon, kind: &str, detail: &str) -> Value {
    let failed = d.wait_for_event("probe_failed", WAIT);
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert_eq!(failed["error_kind"], kind, "{failed}\n{}", d.dump());
    assert!(
        message(&failed).contains(detail),
        "{detail:?} not in {failed}"
    );
    let failover = d.wait_for_event("failover", WAIT);
    // The daemon's own monotonic measure of the outage, then the log lines' wall-clock gap,
    // which trails the measure by the scheduling delay of a loaded machine.
    let failed_for = Duration::from_millis(failover["failed_for_ms"].as_u64().unwrap_or(0));
    assert!(failed_for >= THRESHOLD, "{failover}\n{}", d.dump());
    let waited = between(&failed, &failover);
    assert!(
        waited + LOG_SLACK >= THRESHOLD,
        "failover after {waited:?}\n{}",
        d.dump()
    );
    failover
}

/// EU fails with `mode`, NAM is up: the daemon logs the failures with `kind`, fails over to
/// NAM after the threshold, restarts once, and stays on NAM.
fn eu_fault_fails_over_to_nam(mode: Mode, kind: &str, detail: &str) {
    let (dir, tunnel) = in_region_with("EU", Mode::Up, &[("EU", mode)]);
    let d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();

    let failover = assert_failed_then_failed_over(&d, kind, detail);
    assert_eq!(failover["to_region"], "NAM", "{failover}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert_eq!(dir.calls(), restart_order());
    assert!(dir.temp_files().is_empty(), "{:?}", dir.app_dir_entries());
    wait_for_probes(&tunnel, "NAM", 2);
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    d.finish();
}

cases! {
    eu_fault_fails_over_to_nam;
    endpoint_500_is_a_status_failure: (Mode::Status(500), "status", "HTTP 500");
    endpoint_503_is_a_status_failure: (Mode::Status(503), "status", "HTTP 503");
    endpoint_reset_mid_response_is_a_reset: (Mode::ResetMidResponse, "reset", "reset");
    endpoint_hanging_after_accept_times_out_in_the_tls_handshake: (
        Mode::HangAfterAccept,
        "timeout",
        "in the TLS handshake",
    );
    endpoint_trickling_headers_times_out: (
        Mode::TrickleHeaders,
        "timeout",
        "waiting for the response",
    );
    endpoint_trickling_body_times_out: (Mode::TrickleBody, "timeout", "reading the body");
}

#[test]
fn endpoint_100_mb_body_is_healthy_and_not_buffered() {
    let (dir, tunnel) = in_region_with("EU", Mode::HugeBody, &[]);
    let mut d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--timeout", "2s")
        .flag("--threshold", "5s")
        .env("FAILOVER_HANDLER_LOG", "debug")
        .spawn_daemon();

    let probes = 5;
    let ok = d.wait_for_count(|v| v["event"] == "probe_ok", probes, WAIT * 3);
    assert_eq!(ok[0]["http_status"], 200, "{}", ok[0]);
    let peak_mib = peak_rss_kib(d.pid()) / 1024;
    let sent = tunnel.body_bytes_sent();
    println!(
        "peak RSS {peak_mib} MiB after {probes} probes of a {} MiB body; the tunnel wrote {} MiB in all",
        HUGE_BODY >> 20,
        sent >> 20
    );
    assert!(peak_mib < 64, "peak RSS {peak_mib} MiB");
    assert!(
        sent < probes as u64 * (16 << 20),
        "the tunnel wrote {sent} bytes: bodies were read to the end"
    );
    assert!(d.events("probe_failed").is_empty(), "{}", d.dump());
    assert_eq!(dir.calls(), Vec::<String>::new());
    // DEBUG lines are opt-in (FAILOVER_HANDLER_LOG=debug), so the INFO/WARN/ERROR contract
    // check does not apply to this run.
    let (status, _) = d.terminate();
    assert_eq!(status.code(), Some(0), "{}", d.dump());
}

/// Every region fails the same way (the tunnel itself is wrong): each failure is logged
/// with `kind`, no request gets through, and the plain rule still moves on after the threshold.
/// Behind a transparent forward (`--tls-server-name '{cloud}'`) the certificate is the
/// cloud's: a TLS failure is the region's, and the daemon fails over.
fn tls_fault(cmd: Cmd, dir: &TestDir, tunnel: &FakeTunnel, detail: &str) {
    let d = cmd
        .flag("--region", "EU")
        .flag("--tls-server-name", "{cloud}")
        .spawn_daemon();
    let failover = assert_failed_then_failed_over(&d, "tls", detail);
    assert_eq!(failover["to_region"], "NAM", "{failover}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert_eq!(tunnel.request_count(), 0, "a request went through");
    d.finish();
}

#[test]
fn endpoint_with_untrusted_certificate_is_a_tls_failure() {
    let (dir, tunnel) = in_region("EU");
    let cmd = Cmd::new(&dir).untrusted(&tunnel);
    tls_fault(cmd, &dir, &tunnel, "certificate");
}

#[test]
fn endpoint_with_wrong_name_is_a_tls_failure() {
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start_with_cert(&dir, Mode::Up, &[], Cert::WrongName);
    let cmd = Cmd::new(&dir).tunnel(&tunnel);
    tls_fault(cmd, &dir, &tunnel, "not valid for name");
}

#[test]
fn endpoint_name_that_does_not_resolve_is_a_dns_failure() {
    let dir = TestDir::with_env("EU");
    let d = Cmd::new(&dir)
        .flag(
            "--probe-url",
            "https://fh-fault-test.invalid:8443/v2/{org_id}/cloudlookup/{txn_id}",
        )
        .flag("--region", "EU")
        .spawn_daemon();
    assert_failed_then_failed_over(&d, "dns", "cannot resolve fh-fault-test.invalid");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    d.finish();
}

/// EU answers with `cycle` in turn; after `probes` probes spanning well past the threshold
/// the daemon is still on EU, has restarted nothing, and logged each recovery.
fn flapping_never_fails_over(cycle: &[Mode], interval: &str, probes: usize) -> Vec<Value> {
    let (dir, tunnel) = in_region("EU");
    tunnel.set_cycle("EU", cycle);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--interval", interval)
        .spawn_daemon();
    wait_until(WAIT * 2, "the probes", || {
        tunnel.requests_in("EU") >= probes
    });

    let lines = d.json_lines();
    let first_failure = lines.iter().find(|v| v["event"] == "probe_failed").unwrap();
    let last = lines.last().unwrap();
    let span = between(first_failure, last);
    println!("{probes} probes, failures over {span:?}");
    assert!(span > THRESHOLD * 2, "only {span:?} of flapping");
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert_eq!(dir.calls(), Vec::<String>::new());
    let recovered = d.events("outage_ended");
    assert!(recovered.len() >= probes / cycle.len() - 2, "{}", d.dump());
    d.finish();
    recovered
}

#[test]
fn flapping_every_other_probe_never_fails_over() {
    flapping_never_fails_over(&[Mode::Status(503), Mode::Up], "100ms", 30);
}

#[test]
fn one_success_in_ten_never_fails_over_by_the_plain_rule() {
    let mut cycle = vec![Mode::Status(503); 9];
    cycle.push(Mode::Up);
    let recovered = flapping_never_fails_over(&cycle, "50ms", 50);
    for line in recovered {
        let failed_for = line["failed_for_ms"].as_u64().unwrap();
        assert!(failed_for < 1000, "{line}");
    }
}

/// The daemon starts on EU with no env file, so it writes it and restarts through `cmd`'s
/// supervisorctl; returns the daemon once the first restart_failed line is in.
fn restart_fault(cmd: Cmd, dir: &TestDir, kind: &str) -> (Daemon, Value) {
    let mut d = cmd.flag("--region", "EU").spawn_daemon();
    let failed = d.wait_for_event("restart_failed", WAIT);
    assert_eq!(failed["level"], "ERROR", "{failed}");
    assert_eq!(failed["error_kind"], kind, "{failed}\n{}", d.dump());
    assert_eq!(failed["program"], "app:application", "{failed}");
    assert_eq!(failed["action"], "stop", "{failed}");
    let retry = Duration::from_millis(failed["retry_in_ms"].as_u64().unwrap());
    d.wait_for_count(|v| v["event"] == "restart_failed", 2, retry + WAIT);
    assert!(d.is_running(), "the daemon exited\n{}", d.dump());
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert!(d.events("restart_done").is_empty(), "{}", d.dump());
    (d, failed)
}

#[test]
fn supervisorctl_missing_is_logged_and_retried() {
    let dir = TestDir::new();
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--supervisorctl", "/nonexistent/supervisorctl");
    let (d, failed) = restart_fault(cmd, &dir, "missing");
    assert!(
        message(&failed).contains("/nonexistent/supervisorctl"),
        "{failed}"
    );
    d.finish();
}

#[test]
fn supervisorctl_exiting_non_zero_is_logged_with_code_and_output_and_retried() {
    let dir = TestDir::new();
    let ctl = dir.write_script(
        "failing-supervisorctl",
        "echo \"$2: ERROR (spawn error)\"; exit 3",
    );
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--supervisorctl", ctl.to_str().unwrap());
    let (d, failed) = restart_fault(cmd, &dir, "exit");
    assert_eq!(failed["exit_code"], 3, "{failed}");
    assert_eq!(
        failed["output"], "app:application: ERROR (spawn error)",
        "{failed}"
    );
    d.finish();
}

/// Processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> usize {
    let want = argv.join("\0") + "\0";
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .count()
}

#[test]
fn supervisorctl_hanging_past_its_timeout_is_killed_and_retried() {
    let dir = TestDir::new();
    let ctl = dir.write_script("hanging-supervisorctl", "exec sleep 30.417");
    let config = dir.write_file("failover.toml", "[restart]\ntimeout = \"300ms\"\n");
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--supervisorctl", ctl.to_str().unwrap())
        .flag("--config", config.to_str().unwrap());
    let (mut d, failed) = restart_fault(cmd, &dir, "timeout");
    assert!(
        message(&failed).contains("no answer within 300ms"),
        "{failed}"
    );
    let restarting = d.wait_for_event("restarting", WAIT);
    let took = between(&restarting, &failed);
    assert!(
        took < Duration::from_secs(2),
        "the first call took {took:?}"
    );
    let (status, _) = d.terminate();
    assert_eq!(status.code(), Some(0), "{}", d.dump());
    wait_until(WAIT, "no hanging supervisorctl left", || {
        processes_running(&["sleep", "30.417"]) == 0
    });
    d.assert_log_contract();
}

#[test]
fn supervisord_not_running_is_named_as_such() {
    let dir = TestDir::new();
    let real = ["/usr/bin/supervisorctl", "/usr/local/bin/supervisorctl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(real) = real else {
        assert!(
            std::env::var_os("CI").is_none(),
            "supervisorctl is not installed"
        );
        println!("SKIPPED: supervisorctl is not installed");
        return;
    };
    let sock = dir.path().join("supervisor.sock");
    let conf = dir.write_file(
        "supervisord.conf",
        &format!("[supervisorctl]\nserverurl=unix://{}\n", sock.display()),
    );
    let config = dir.write_file(
        "failover.toml",
        &format!("[restart]\nargs = [\"-c\", \"{}\"]\n", conf.display()),
    );
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--supervisorctl", real)
        .flag("--config", config.to_str().unwrap());
    let (d, failed) = restart_fault(cmd, &dir, "supervisord_down");
    assert_eq!(failed["exit_code"], 7, "{failed}");
    assert!(
        failed["output"].as_str().unwrap().contains("no such file"),
        "{failed}"
    );
    d.finish();
}

#[test]
fn env_file_directory_missing_is_retried_until_it_appears() {
    let dir = TestDir::new();
    let env_dir = dir.path().join("later");
    let env_file = env_dir.join("ext_cloud.env");
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--env-file", env_file.to_str().unwrap())
        .flag("--region", "EU")
        .spawn_daemon();

    let failed = d.wait_for_event("env_file_write_failed", WAIT);
    assert_eq!(failed["level"], "ERROR", "{failed}");
    assert_eq!(failed["error_kind"], "no_directory", "{failed}");
    let probes = tunnel.request_count() + 4;
    wait_until(WAIT, "four more probes", || {
        tunnel.request_count() >= probes
    });
    assert_eq!(
        d.events("env_file_write_failed").len(),
        1,
        "a lasting failure is said once, not at every retry\n{}",
        d.dump()
    );
    assert_eq!(
        dir.calls(),
        Vec::<String>::new(),
        "restarted without an env file"
    );
    fs::create_dir(&env_dir).unwrap();
    let back = d.wait_for_event("env_file_write_recovered", WAIT);
    assert_eq!(back["level"], "INFO", "{back}");
    assert!(back["failures"].as_u64().unwrap() >= 4, "{back}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(fs::read_to_string(&env_file).unwrap(), env_for("EU"));
    assert_eq!(dir.calls(), restart_order());
    d.finish();
}

/// EU is failing and the env file cannot be written: the failover (to APAC, next in the
/// default order) is announced once, the write failure logged with `kind` and retried at each
/// probe, nothing restarted, the file untouched; once `mend` runs, the failover completes.
/// A temp dir with a tmpfs of `size` mounted on `name` and the env file of EU on it; `None`
/// where no tmpfs can be mounted (the test then passes as SKIPPED).
fn env_file_on_tmpfs(name: &str, size: &str) -> Option<(TestDir, Tmpfs, PathBuf)> {
    let dir = TestDir::new();
    let mount = Tmpfs::mount(&dir.path().join(name), size)?;
    let env_file = dir.path().join(name).join("ext_cloud.env");
    fs::write(&env_file, env_for("EU")).unwrap();
    Some((dir, mount, env_file))
}

fn failover_blocked_by_env_file(
    dir: &TestDir,
    env_file: &std::path::Path,
    kind: &str,
    mend: impl FnOnce(),
) {
    let tunnel = FakeTunnel::start_with(dir, Mode::Up, &[("EU", Mode::Status(503))]);
    tunnel.follow(env_file);
    let mut d = Cmd::new(dir)
        .tunnel(&tunnel)
        .flag("--env-file", env_file.to_str().unwrap())
        .spawn_daemon();
    let failed = d.wait_for_event("env_file_write_failed", WAIT);
    assert_eq!(failed["error_kind"], kind, "{failed}");
    assert!(
        message(&failed).contains("staying on region EU"),
        "{failed}"
    );
    wait_for_probes(&tunnel, "EU", 4);
    assert_eq!(
        d.events("env_file_write_failed").len(),
        1,
        "a lasting failure is said once, not at every probe\n{}",
        d.dump()
    );
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    assert_eq!(fs::read_to_string(env_file).unwrap(), env_for("EU"));
    assert_eq!(
        dir.calls(),
        Vec::<String>::new(),
        "restarted without an env file"
    );
    let parent = env_file.parent().unwrap();
    let leftovers: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(d.is_running(), "{}", d.dump());

    mend();
    let back = d.wait_for_event("env_file_write_recovered", WAIT);
    assert!(back["failures"].as_u64().unwrap() >= 4, "{back}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(fs::read_to_string(env_file).unwrap(), env_for("APAC"));
    assert_eq!(dir.calls(), restart_order());
    d.finish();
}

#[test]
fn env_file_on_read_only_file_system_blocks_the_failover_until_writable() {
    let Some((dir, mount, env_file)) = env_file_on_tmpfs("ro", "1m") else {
        return;
    };
    mount.set_read_only(true);
    failover_blocked_by_env_file(&dir, &env_file, "read_only", || mount.set_read_only(false));
}

#[test]
fn env_file_on_full_file_system_blocks_the_failover_until_space_is_freed() {
    let Some((dir, mount, env_file)) = env_file_on_tmpfs("full", "64k") else {
        return;
    };
    let filler = mount.fill();
    failover_blocked_by_env_file(&dir, &env_file, "disk_full", || {
        fs::remove_file(filler).unwrap()
    });
}

/// Starts the daemon on the env file `dir` holds, waits for its warning `event` (checked by
/// `check`), then for the env file rewritten for NAM by a restart.
fn env_file_replaced_at_start(
    dir: &TestDir,
    event: &str,
    check: impl FnOnce(&Value),
) -> (FakeTunnel, Daemon) {
    let tunnel = FakeTunnel::start(dir);
    let d = Cmd::new(dir).tunnel(&tunnel).spawn_daemon();
    check(&d.wait_for_event(event, WAIT));
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    (tunnel, d)
}

#[test]
fn garbage_env_file_at_start_is_replaced_whole() {
    let dir = TestDir::new();
    let garbage: &[u8] =
        b"\x00\xff\xfeEXT_REGION=$(reboot)\nexport EXT_CLOUD=`id`;\n\xc3\x28 EXT_REGION=EU X\n";
    fs::write(dir.env_file(), garbage).unwrap();
    let (_tunnel, d) = env_file_replaced_at_start(&dir, "env_file_unrecognised", |warned| {
        assert_eq!(warned["level"], "WARN", "{warned}");
    });
    assert_eq!(dir.calls(), restart_order());
    d.finish();
}

#[test]
fn huge_env_file_at_start_is_not_read_and_is_replaced() {
    let dir = TestDir::new();
    dir.write_env(&"export EXT_REGION=EU # padding padding padding\n".repeat(50_000));
    let (_tunnel, d) = env_file_replaced_at_start(&dir, "env_file_unreadable", |warned| {
        assert_eq!(warned["error_kind"], "too_large", "{warned}");
    });
    assert!(peak_rss_kib(d.pid()) < 64 * 1024);
    d.finish();
}

#[test]
fn env_file_deleted_while_running_is_written_back_without_a_restart() {
    let (dir, tunnel, d) = settled_daemon("EU", "env_file_current");
    fs::remove_file(dir.env_file()).unwrap();
    let restored = d.wait_for_event("env_file_restored", WAIT);
    assert_eq!(restored["region"], "EU", "{restored}");
    wait_until(WAIT, "the env file back", || dir.read_env().is_some());
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    wait_for_probes(&tunnel, "EU", 3);
    assert_eq!(dir.calls(), Vec::<String>::new(), "programs restarted");
    d.finish();
}

/// A small xorshift generator: random kill moments without a dependency; the seed is printed
/// so that a failing run can be repeated with FH_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("FH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("FH_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn quiet(cmd: &Cmd) -> Child {
    cmd.command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigkill_at_random_moments_during_switches_leaves_old_or_new_file_whole() {
    let dir = TestDir::with_env("EU");
    let switch = |region: &str| {
        Cmd::new(&dir)
            .sub(&["switch", region])
            .switch("--no-restart")
    };

    // How long one switch takes from spawn to exit: the range the kills are spread over.
    let started = Instant::now();
    for region in ["NAM", "EU", "NAM", "EU"] {
        assert!(quiet(&switch(region)).wait().unwrap().success());
    }
    let one = started.elapsed() / 4;
    let range = one.as_micros() as u64 * 5 / 4;
    println!("one switch takes {one:?}; kills land within {range} µs of the spawn");

    let mut rng = Rng::new();
    let (mut old, mut new) = ("EU", "APAC");
    let mut outcomes = [0usize; 2];
    let mut temp_seen = 0;
    let rounds = 300;
    for round in 0..rounds {
        let mut child = quiet(&switch(new));
        std::thread::sleep(Duration::from_micros(rng.below(range)));
        let _ = child.kill();
        let _ = child.wait();
        let now = dir.read_env();
        let temps = dir.temp_files();
        temp_seen += temps.len();
        assert!(
            temps.len() <= 1,
            "round {round}: temp files pile up: {temps:?}"
        );
        if now.as_deref() == Some(env_for(new).as_str()) {
            outcomes[1] += 1;
            old = new;
        } else {
            assert_eq!(
                now.as_deref(),
                Some(env_for(old).as_str()),
                "round {round}: neither {old} nor {new}"
            );
            outcomes[0] += 1;
        }
        new = match old {
            "EU" => "APAC",
            "APAC" => "NAM",
            _ => "EU",
        };
    }
    println!(
        "{rounds} kills: {} left the old file, {} the new one; {temp_seen} temp files seen and removed by the next write",
        outcomes[0], outcomes[1]
    );
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "kills all landed on one side: {outcomes:?}"
    );

    // The next write, unkilled, leaves exactly the env file (and the locks).
    assert!(quiet(&switch(new)).wait().unwrap().success());
    assert_eq!(dir.read_env(), Some(env_for(new)));
    assert!(dir.temp_files().is_empty(), "{:?}", dir.app_dir_entries());
    dir.assert_env_file_and_switch_locks_only();
}

#[test]
fn daemon_start_removes_temp_files_of_a_killed_writer() {
    let dir = TestDir::with_env("EU");
    let stale = dir.path().join("app").join(".ext_cloud.env.Xy12Zw.tmp");
    fs::write(&stale, "export EXT_CLOUD=cloud.na").unwrap();
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    let removed = d.wait_for_event("stale_temp_removed", WAIT);
    assert_eq!(removed["count"], 1, "{removed}");
    assert!(!stale.exists());
    d.wait_for_event("env_file_current", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    d.finish();
}

#[test]
fn sigterm_during_a_restart_exits_promptly_and_the_restart_resumes_at_next_start() {
    let dir = TestDir::new();
    let slow = dir.slow_supervisorctl(0.3);
    let tunnel = FakeTunnel::start(&dir);
    let mut d = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--supervisorctl", slow.to_str().unwrap())
        .spawn_daemon();
    wait_until(WAIT, "the restart under way", || dir.calls().len() >= 2);
    let (status, took) = d.terminate();
    println!("SIGTERM to exit during a restart: {took:?}");
    assert_eq!(status.code(), Some(0), "{}", d.dump());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let interrupted = d.wait_for_event("restart_interrupted", WAIT);
    assert_eq!(interrupted["region"], "EU", "{interrupted}");
    assert!(
        text(&interrupted["stopped"]).starts_with("app:application"),
        "{interrupted}"
    );
    d.assert_log_contract();
    let first_run = dir.calls();
    assert!(first_run.len() < 6, "{first_run:?}");
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    let marker = dir.state_dir().join("restart-pending");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "EU\n");
    let mode = fs::metadata(&marker).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "marker mode {mode:o}");

    let d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();
    let resumed = d.wait_for_event("restart_resumed", WAIT);
    assert_eq!(resumed["region"], "EU", "{resumed}");
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.calls()[first_run.len()..], restart_order()[..]);
    assert!(!marker.exists());
    d.finish();
}

#[test]
fn two_switches_at_once_run_one_after_the_other_and_the_last_wins() {
    let dir = TestDir::with_env("NAM");
    let slow = dir.slow_supervisorctl(0.15);
    let switch = |region: &str| {
        Cmd::new(&dir)
            .sub(&["switch", region])
            .flag("--supervisorctl", slow.to_str().unwrap())
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = [("EU", switch("EU")), ("APAC", switch("APAC"))];
    let mut exit_order = Vec::new();
    let deadline = Instant::now() + WAIT * 2;
    while exit_order.len() < 2 {
        assert!(Instant::now() < deadline, "the switches did not finish");
        for (region, child) in children.iter_mut() {
            if !exit_order.iter().any(|(r, _)| r == region)
                && let Some(status) = child.try_wait().unwrap()
            {
                exit_order.push((*region, status.code()));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let [(first, first_code), (last, last_code)] = [exit_order[0], exit_order[1]];
    assert_eq!((first_code, last_code), (Some(0), Some(0)));
    let waited = children
        .into_iter()
        .find(|(r, _)| *r == last)
        .map(|(_, c)| c.wait_with_output().unwrap())
        .unwrap();
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(stderr.contains("waiting for it to finish"), "{stderr}");
    println!("{first} switched first, {last} waited and won");
    assert_eq!(dir.read_env(), Some(env_for(last)));
    let twice: Vec<String> = restart_order().into_iter().cycle().take(12).collect();
    assert_eq!(dir.calls(), twice, "restarts interleaved");
    assert!(dir.temp_files().is_empty());
}

/// A supervisord socket that accepts and never answers, as a `switch` meets it in its
/// pre-check. The switch holds nothing while it waits: the daemon's failover of the region
/// that fails meanwhile writes the env file within the threshold and 2 s. The switch gives up
/// at `restart.timeout`, exits 1 and writes nothing.
#[test]
fn a_switch_stuck_on_a_hung_supervisord_never_blocks_the_daemons_failover() {
    let (dir, tunnel) = in_region("NAM");
    let sock = dir.path().join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    wait_for_probes(&tunnel, "NAM", 2);

    let config = dir.write_file("switch.toml", "[restart]\ntimeout = \"3s\"\n");
    let switch = Cmd::new(&dir)
        .sub(&["switch", "APAC"])
        .tunnel(&tunnel)
        .flag("--config", config.to_str().unwrap())
        .flag("--restart-via", "xmlrpc")
        .arg("--supervisorctl-arg=-s")
        .arg(&format!("--supervisorctl-arg=unix://{}", sock.display()));
    let switch = switch.start();
    wait_until(WAIT, "the switch to call the hung supervisord", || {
        !held.lock().unwrap().is_empty()
    });

    tunnel.set_region("NAM", Mode::Status(503));
    let failed = d.wait_for_event("probe_failed", WAIT);
    let written = d.wait_for_event("env_file_written", WAIT);
    assert_eq!(written["region"], "EU", "{written}\n{}", d.dump());
    let took = between(&failed, &written);
    println!("the failover wrote the env file {took:?} after the first failure");
    assert!(
        took <= THRESHOLD + Duration::from_secs(2),
        "the failover wrote the env file {took:?} after the first failure\n{}",
        d.dump()
    );
    assert_eq!(dir.read_env(), Some(env_for("EU")));

    let out = switch.output_within(WAIT);
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        stderr.contains("switch to APAC refused before writing anything"),
        "{stderr}"
    );
    assert!(stderr.contains("no answer within 3s"), "{stderr}");
    assert_ne!(dir.read_env(), Some(env_for("APAC")));
    d.finish();
}

/// A `switch` whose pre-check passes and whose restart then hangs (a supervisorctl that
/// answers and then never returns from `stop`): the switch holds only its own queue lock
/// through the restart, so the daemon's failover of the region that fails meanwhile writes the
/// env file within the threshold and 2 s. The switch gives up after its attempts and exits 1.
#[test]
fn a_switch_whose_restart_hangs_never_blocks_the_daemons_failover() {
    let (dir, tunnel) = in_region("NAM");
    let log = dir.path().join("hung-supervisorctl.log");
    let hung = dir.write_script(
        "hung-supervisorctl",
        &format!(
            "echo \"$*\" >> '{}'\ncase \"$*\" in *stop*) exec sleep 60;; esac\nexit 0",
            log.display()
        ),
    );
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    wait_for_probes(&tunnel, "NAM", 2);

    let config = dir.write_file("switch.toml", "[restart]\ntimeout = \"3s\"\n");
    let switch = Cmd::new(&dir)
        .sub(&["switch", "APAC"])
        .tunnel(&tunnel)
        .flag("--config", config.to_str().unwrap())
        .flag("--restart-via", "supervisorctl")
        .flag("--supervisorctl", hung.to_str().unwrap());
    let switch = switch.start();
    wait_until(WAIT, "the switch to hang in its restart's stop", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("stop"))
    });
    assert_eq!(dir.read_env(), Some(env_for("APAC")));
    wait_for_probes(&tunnel, "APAC", 1);

    tunnel.set_region("APAC", Mode::Status(503));
    let failed = d.wait_for(
        |v| v["event"] == "probe_failed" && v["region"] == "APAC",
        WAIT,
    );
    let written = d.wait_for(
        |v| v["event"] == "env_file_written" && v["region"] != "APAC",
        WAIT,
    );
    let took = between(&failed, &written);
    println!("the failover wrote the env file {took:?} after the first failure");
    assert!(
        took <= THRESHOLD + Duration::from_secs(2),
        "the failover wrote the env file {took:?} after the first failure\n{}",
        d.dump()
    );
    assert_eq!(dir.read_env(), Some(env_for(text(&written["region"]))));
    assert!(
        !d.json_lines().iter().any(|v| v["error_kind"] == "busy"),
        "{}",
        d.dump()
    );

    let out = switch.output_within(WAIT * 2);
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        stderr.contains("restarting the programs failed"),
        "{stderr}"
    );
    d.finish();
}

/// The state directory fills up while a record is being journaled: the record is cut short
/// by ENOSPC. Once space is back, the next record starts on a line of its own (the cut one
/// was taken back), so every line of the journal is a whole record and `replay --strict`
/// reads it.
#[test]
fn a_full_state_directory_never_leaves_a_torn_journal_line() {
    let dir = TestDir::with_env("NAM");
    let Some(mount) = Tmpfs::mount(&dir.state_dir(), "64k") else {
        return;
    };
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir).tunnel(&tunnel);
    let d = cmd.spawn_daemon();
    wait_for_probes(&tunnel, "NAM", 2);
    let journal = dir.state_dir().join("journal.jsonl");
    wait_until(WAIT, "the first journal record", || {
        fs::read_to_string(&journal).is_ok_and(|t| t.ends_with('\n'))
    });

    // A whole record of padding leaves 10 bytes free in the journal's last page; then the file
    // system is filled, so the next record gets 10 bytes written and then ENOSPC.
    let first = fs::read_to_string(&journal).unwrap();
    let mut pad: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    pad["message"] = Value::String(String::new());
    let base = serde_json::to_string(&pad).unwrap().len() + 1;
    let mut want = (4096 - 10 - first.len() % 4096) % 4096;
    while want < base {
        want += 4096;
    }
    pad["message"] = Value::String("x".repeat(want - base));
    let line = format!("{}\n", serde_json::to_string(&pad).unwrap());
    assert_eq!(line.len(), want);
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }
    let filler = mount.fill();

    tunnel.set_region("NAM", Mode::Status(503));
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    d.wait_for_event("journal_write_failed", WAIT);
    fs::remove_file(filler).unwrap();
    cmd.clone().sub(&["pause", "--for", "30m"]).exits(0);
    d.wait_for_event("journal_recovered", WAIT);
    wait_until(WAIT, "the pause in the journal", || {
        fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"event\":\"paused\""))
    });

    let text = fs::read_to_string(&journal).unwrap();
    for (n, line) in text.lines().enumerate() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "journal line {} is not a record: {line:?}",
            n + 1
        );
    }
    assert!(text.ends_with('\n'));
    let out = cmd
        .clone()
        .sub(&["replay", "--journal", journal.to_str().unwrap(), "--strict"])
        .output();
    assert_eq!(out.code, Some(0), "{out:#?}");
    d.finish();
}

#[test]
fn a_state_dir_that_cannot_be_made_is_warned_about_and_the_daemon_runs_without_it() {
    let (dir, tunnel) = in_region("EU");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "a file where the state dir's parent should be\n").unwrap();
    let state = blocker.join("state");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--state-dir", state.to_str().unwrap())
        .spawn_daemon();
    let unusable = d.wait_for_event("state_dir_unavailable", WAIT);
    assert_eq!(unusable["level"], "WARN", "{unusable}");
    assert_eq!(unusable["path"], state.to_str().unwrap(), "{unusable}");
    assert!(
        text(&unusable["error"]).contains("Not a directory"),
        "{unusable}"
    );
    assert!(
        message(&unusable).contains("is not usable")
            && message(&unusable).contains("running without it"),
        "{unusable}"
    );
    d.wait_for_event("daemon_started", WAIT);
    wait_for_probes(&tunnel, "EU", 2);
    assert!(d.events("state_write_failed").is_empty(), "{}", d.dump());
    d.assert_log_contract();
    d.finish();
}
