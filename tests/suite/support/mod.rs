//! Shared harness for the integration tests, in the manner of ripgrep's `tests/util.rs`:
//! a temp dir per test with a recording `supervisorctl` stand-in, a builder that runs the
//! real binary with a clean environment, a running daemon whose stdout log lines are
//! collected (`daemon.rs`), an in-process HTTPS fake of the local tunnel (`tunnel.rs`), and
//! the real stack: supervisord, stunnel and three fake regional clouds (`stack.rs`).

mod daemon;
pub mod etcd;
pub mod stack;
mod tunnel;

pub use daemon::{Daemon, between, timestamp};
pub use stack::{Stack, StackOptions};
pub use tunnel::{Cert, FakeTunnel, HUGE_BODY, Mode};

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_failover-handler");

/// The failover list the product uses when nothing else is configured.
pub const DEFAULT_LIST: &str = "NAM=cloud.nam.ext.com,EU=cloud.eu.ext.com,APAC=cloud.apac.ext.com";

/// What the stand-in records for one restart with the default programs, in order.
pub const RESTART_ORDER: [&str; 6] = [
    "stop app:application",
    "stop app:cloud-client",
    "stop app:stunnel",
    "start app:stunnel",
    "start app:cloud-client",
    "start app:application",
];

/// What a real supervisorctl prints when supervisord is not running.
pub const SUPERVISOR_ERROR: &str = "error: <class 'socket.error'>, [Errno 111] Connection refused: file: /usr/lib/python3/dist-packages/supervisor/xmlrpc.py line: 560";

/// The `X-SIG-Sha256` header every probe carries by default.
pub const SIG_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The file name of the recording stand-in: not `supervisorctl`, so that `restart.via = "auto"`
/// calls it as configured, as it does any wrapper, and never looks for a supervisord.
pub const STAND_IN: &str = "supervisorctl-stand-in";

/// The product's service name in every log line.
pub const SERVICE: &str = "ext_cloud_outage_handler";

/// Variables the product reads; removed from every run so the host cannot leak in.
pub const PRODUCT_VARS: [&str; 10] = [
    "FAILOVER_HANDLER_CONFIG",
    "FAILOVER_HANDLER_RUNTIME_DIR",
    "FAILOVER_HANDLER_LOG",
    "FAILOVER_HANDLER_DD_URL",
    "DD_API_KEY",
    "DD_SITE",
    "EXT_CLOUD_FAILOVER_LIST",
    "CONNECTION_KEEPALIVE_ORG_ID",
    "CONNECTION_KEEPALIVE_TXN_ID",
    "RUST_LOG",
];

/// The cloud host of a region in the default list.
pub fn cloud_of(region: &str) -> String {
    format!("cloud.{}.ext.com", region.to_lowercase())
}

/// The exact bytes of the env file naming `region` of the default list.
pub fn env_for(region: &str) -> String {
    format!(
        "export EXT_CLOUD={}\nexport EXT_REGION={}\n",
        cloud_of(region),
        region
    )
}

/// A temp dir whose env file names `region` of the default list, and a fake tunnel for it:
/// how most tests start.
pub fn in_region(region: &str) -> (TestDir, FakeTunnel) {
    in_region_with(region, Mode::Up, &[])
}

/// Like `in_region`, with the tunnel answering in `default` and per-region `modes`.
pub fn in_region_with(
    region: &str,
    default: Mode,
    modes: &[(&str, Mode)],
) -> (TestDir, FakeTunnel) {
    let dir = TestDir::with_env(region);
    let tunnel = FakeTunnel::start_with(&dir, default, modes);
    (dir, tunnel)
}

/// The string in a JSON value; panics if it holds anything else.
pub fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Asserts each field of a log line or JSON document has its value, one at a time, in order.
#[track_caller]
pub fn assert_fields(v: &serde_json::Value, expected: &[(&str, &str)]) {
    for &(key, value) in expected {
        assert_eq!(v[key], value, "{v}");
    }
}

/// A daemon with the default options in `region`, settled: its log line `event` seen and
/// two probes of the region answered.
pub fn settled_daemon(region: &str, event: &str) -> (TestDir, FakeTunnel, Daemon) {
    let (dir, tunnel) = in_region(region);
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    d.wait_for_event(event, Duration::from_secs(10));
    wait_for_probes(&tunnel, region, 2);
    (dir, tunnel, d)
}

/// Bad input must stop the daemon at once.
const AT_ONCE: Duration = Duration::from_secs(10);

/// Exit 2, one stderr line naming one of `names`, and nothing written or restarted.
pub fn assert_bad_input(dir: &TestDir, cmd: Cmd, names: &[&str]) {
    let out = cmd.output_within(AT_ONCE);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "not one stderr line: {out:#?}"
    );
    assert!(
        out.stderr.starts_with("failover-handler: error: "),
        "{out:#?}"
    );
    assert!(
        names.iter().any(|n| out.stderr.contains(n)),
        "stderr names none of {names:?}: {out:#?}"
    );
    assert_eq!(dir.read_env(), None, "env file written");
    assert_eq!(dir.calls(), Vec::<String>::new(), "supervisorctl called");
    assert!(!dir.state_dir().exists(), "state dir created");
}

/// Runs `sub` in a fresh temp dir with what `with` adds to the command, and asserts it is
/// refused as bad input naming one of `names`.
pub fn rejects(sub: &[&str], names: &[&str], with: impl FnOnce(&TestDir, Cmd) -> Cmd) {
    let dir = TestDir::new();
    let cmd = with(&dir, Cmd::new(&dir).sub(sub));
    assert_bad_input(&dir, cmd, names);
}

/// The supervisorctl calls of one restart of the default programs, in order.
pub fn restart_order() -> Vec<String> {
    RESTART_ORDER.iter().map(|s| s.to_string()).collect()
}

/// Waits until the tunnel has answered `n` more probes while `region` was active.
pub fn wait_for_probes(tunnel: &FakeTunnel, region: &str, n: usize) {
    let target = tunnel.requests_in(region) + n;
    wait_until(
        Duration::from_secs(10),
        &format!("{n} probes in {region}"),
        || tunnel.requests_in(region) >= target,
    );
}

/// Whether `tool` runs; when it does not, fails under CI and says SKIPPED elsewhere.
pub fn have(tool: &str, package: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing (Debian package {package}); CI must have it"
        );
        eprintln!("SKIPPED: {tool} is missing (apt-get install {package})");
    }
    found
}

/// One of the two places for a scenario that runs a whole stack (supervisord, stunnel, the
/// programs) or a fleet (etcd and five handlers), held while it lives: the suite runs several
/// tests at a time, and more than two of these at once starve each other's probes on 2 cores.
pub struct HeavySlot(());

static HEAVY: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

impl HeavySlot {
    /// Waits for a free place. A test that panicked while holding one has still given it back.
    pub fn take() -> HeavySlot {
        let (count, freed) = &HEAVY;
        let mut held = count.lock().unwrap_or_else(|e| e.into_inner());
        while *held >= 2 {
            held = freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += 1;
        HeavySlot(())
    }
}

impl Drop for HeavySlot {
    fn drop(&mut self) {
        let (count, freed) = &HEAVY;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// A port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` until it holds, or panics after `timeout` with `what`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A temp dir of one test: the env file lives in `app/`, the stand-in and the CA beside it.
pub struct TestDir {
    tmp: tempfile::TempDir,
    pki: tunnel::Pki,
}

impl TestDir {
    pub fn new() -> TestDir {
        let tmp = tempfile::Builder::new()
            .prefix("failover-handler-test-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(tmp.path().join("app")).unwrap();
        let dir = tmp.path().display().to_string();
        let script = format!(
            "#!/bin/sh\n\
             if [ -e '{dir}/supervisorctl.fail' ]; then\n\
             \techo \"{SUPERVISOR_ERROR}\"\n\
             \texit 7\n\
             fi\n\
             echo \"$*\" >> '{dir}/supervisorctl.log'\n\
             exit 0\n"
        );
        let stand_in = tmp.path().join(STAND_IN);
        fs::write(&stand_in, script).unwrap();
        fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).unwrap();
        let pki = tunnel::Pki::generate();
        fs::write(tmp.path().join("ca.pem"), &pki.ca_pem).unwrap();
        TestDir { tmp, pki }
    }

    /// A temp dir whose env file names `region` of the default list.
    pub fn with_env(region: &str) -> TestDir {
        let dir = TestDir::new();
        dir.write_env(&env_for(region));
        dir
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn env_file(&self) -> PathBuf {
        self.path().join("app").join("ext_cloud.env")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn supervisorctl(&self) -> PathBuf {
        self.path().join(STAND_IN)
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.path().join("ca.pem")
    }

    pub fn pki(&self) -> &tunnel::Pki {
        &self.pki
    }

    /// The test CA in DER, for a client that trusts the fake tunnel.
    pub fn ca_der(&self) -> Vec<u8> {
        self.pki.ca_der.clone()
    }

    /// The stand-in's calls so far, one `$*` per entry (empty if it was never called).
    pub fn calls(&self) -> Vec<String> {
        match fs::read_to_string(self.path().join("supervisorctl.log")) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Makes every later stand-in call fail like a supervisorctl without supervisord.
    pub fn fail_supervisorctl(&self, fail: bool) {
        let flag = self.path().join("supervisorctl.fail");
        if fail {
            fs::write(flag, "").unwrap();
        } else {
            fs::remove_file(flag).unwrap();
        }
    }

    pub fn write_env(&self, contents: &str) {
        fs::write(self.env_file(), contents).unwrap();
    }

    pub fn read_env(&self) -> Option<String> {
        fs::read_to_string(self.env_file()).ok()
    }

    /// Writes a file (e.g. a config) into the temp dir and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// The names in the env file's directory (to spot leftover temp files).
    pub fn app_dir_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path().join("app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl TestDir {
    /// Asserts the env file's directory holds, after a `switch`, the env file, its lock and
    /// the switches' queue lock, nothing else.
    #[track_caller]
    pub fn assert_env_file_and_switch_locks_only(&self) {
        assert_eq!(
            self.app_dir_entries(),
            vec![
                ".ext_cloud.env.lock".to_string(),
                ".ext_cloud.env.switch.lock".to_string(),
                "ext_cloud.env".to_string()
            ]
        );
    }

    /// Temp files of the env file's writer left in `app/` (`.ext_cloud.env.*.tmp`).
    pub fn temp_files(&self) -> Vec<String> {
        self.app_dir_entries()
            .into_iter()
            .filter(|n| n.starts_with(".ext_cloud.env.") && n.ends_with(".tmp"))
            .collect()
    }

    /// Writes an executable `/bin/sh` script into the temp dir and returns its path.
    pub fn write_script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.write_file(name, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A supervisorctl stand-in that records each call like the default one, then sleeps
    /// `secs` (so that a restart takes a while).
    pub fn slow_supervisorctl(&self, secs: f64) -> PathBuf {
        let log = self.path().join("supervisorctl.log");
        self.write_script(
            "slow-supervisorctl",
            &format!("echo \"$*\" >> '{}'\nsleep {secs}", log.display()),
        )
    }
}

/// A tmpfs mounted by a test (tests run as root), unmounted when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `64k`) on `path` (created if missing). When mounting
    /// is impossible: panics under CI (env `CI` set), else prints SKIPPED and returns None.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                path: path.to_owned(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs on {}: {why}",
                    path.display()
                );
                println!("SKIPPED: cannot mount a tmpfs on {}: {why}", path.display());
                None
            }
        }
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) {
        let opts = if ro { "remount,ro" } else { "remount,rw" };
        let status = Command::new("mount")
            .args(["-o", opts])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "mount -o {opts} {}", self.path.display());
    }

    /// Fills the file system with `filler` until it is full.
    pub fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = fs::File::create(&filler).unwrap();
        let chunk = [0u8; 4096];
        loop {
            use std::io::Write;
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "{e}");
                    break;
                }
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A process's peak resident set size in KiB (`VmHWM` in `/proc/<pid>/status`).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

/// What a finished one-shot command showed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The JSON lines with `event` = `name` that a one-shot command logged on stderr
    /// (`--log-format json`).
    pub fn stderr_events(&self, name: &str) -> Vec<serde_json::Value> {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == name)
            .collect()
    }
}

/// Where the daemons of the test in `dir` list themselves.
pub fn runtime_dir(dir: &TestDir) -> PathBuf {
    dir.path().join("run").join("failover-handler")
}

/// A run of the real binary: subcommand and its arguments first, then the options.
#[derive(Clone, Debug)]
pub struct Cmd {
    cwd: PathBuf,
    sub: Vec<String>,
    flags: Vec<(String, Option<String>)>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    umask: Option<String>,
    nofile: Option<u64>,
}

impl Cmd {
    /// The binary with options pointing into `dir` and short timings. The probe URL points
    /// at a closed port until `tunnel` is called.
    pub fn new(dir: &TestDir) -> Cmd {
        let path = |p: PathBuf| Some(p.display().to_string());
        Cmd::bare(dir)
            .flag_opt("--env-file", path(dir.env_file()))
            .flag_opt("--state-dir", path(dir.state_dir()))
            .flag_opt("--supervisorctl", path(dir.supervisorctl()))
            .flag("--probe-url", &probe_url(1))
            .flag_opt("--ca-cert", path(dir.ca_pem()))
            .flag("--interval", "100ms")
            .flag("--timeout", "400ms")
            .flag("--threshold", "1s")
            .flag("--startup-grace", "0s")
    }

    /// The binary with no option at all (for `--help`, `--version`).
    pub fn bare(dir: &TestDir) -> Cmd {
        Cmd {
            cwd: dir.path().to_owned(),
            sub: Vec::new(),
            flags: Vec::new(),
            extra: Vec::new(),
            umask: None,
            nofile: None,
            env: vec![
                ("CONNECTION_KEEPALIVE_ORG_ID".into(), "org1".into()),
                ("CONNECTION_KEEPALIVE_TXN_ID".into(), "txn1".into()),
                // Each test's daemons list themselves in the test's own runtime directory
                // (tests run as root, whose default is the one `/run/failover-handler`).
                (
                    "XDG_RUNTIME_DIR".into(),
                    dir.path().join("run").display().to_string(),
                ),
                (
                    "FAILOVER_HANDLER_RUNTIME_DIR".into(),
                    runtime_dir(dir).display().to_string(),
                ),
            ],
        }
    }

    /// Probes through `tunnel`.
    pub fn tunnel(self, tunnel: &FakeTunnel) -> Cmd {
        self.flag("--probe-url", &tunnel.url())
    }

    /// Probes through `tunnel` without the test CA, so that its certificate is untrusted.
    pub fn untrusted(self, tunnel: &FakeTunnel) -> Cmd {
        self.tunnel(tunnel).without("--ca-cert")
    }

    /// Probes through `tunnel`, starting in `region` (`--region`).
    pub fn tunnel_in(self, tunnel: &FakeTunnel, region: &str) -> Cmd {
        self.tunnel(tunnel).flag("--region", region)
    }

    /// Probes through `tunnel` without the test CA, and says `--insecure` to accept it.
    pub fn insecure(self, tunnel: &FakeTunnel) -> Cmd {
        self.untrusted(tunnel).switch("--insecure")
    }

    /// The subcommand and its positional arguments, e.g. `&["switch", "EU"]`.
    pub fn sub(mut self, args: &[&str]) -> Cmd {
        self.sub = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets an option, replacing a default of the same name.
    pub fn flag(self, name: &str, value: &str) -> Cmd {
        self.flag_opt(name, Some(value.to_owned()))
    }

    /// Adds a switch without a value, e.g. `--no-restart`.
    pub fn switch(self, name: &str) -> Cmd {
        self.flag_opt(name, None)
    }

    fn flag_opt(mut self, name: &str, value: Option<String>) -> Cmd {
        match self.flags.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.flags.push((name.to_owned(), value)),
        }
        self
    }

    /// Drops a default option.
    pub fn without(mut self, name: &str) -> Cmd {
        self.flags.retain(|(n, _)| n != name);
        self
    }

    /// Appends a raw argument after everything else.
    pub fn arg(mut self, arg: &str) -> Cmd {
        self.extra.push(arg.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Removes one of the default variables (org and txn ids).
    pub fn env_remove(mut self, key: &str) -> Cmd {
        self.env.retain(|(k, _)| k != key);
        self
    }

    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = self.sub.iter().map(OsString::from).collect();
        for (name, value) in &self.flags {
            args.push(name.into());
            if let Some(value) = value {
                args.push(value.into());
            }
        }
        args.extend(self.extra.iter().map(OsString::from));
        args
    }

    /// Runs the binary under this umask (e.g. `000`), through `/bin/sh` (the test's, not the
    /// product's: it only sets the umask and execs).
    pub fn umask(mut self, mask: &str) -> Cmd {
        self.umask = Some(mask.to_owned());
        self
    }

    /// Runs the binary with `RLIMIT_NOFILE` (soft and hard) at `limit`, as `ulimit -n` would.
    pub fn nofile(mut self, limit: u64) -> Cmd {
        self.nofile = Some(limit);
        self
    }

    pub fn has_sub(&self) -> bool {
        !self.sub.is_empty()
    }

    pub fn command(&self) -> Command {
        let mut cmd = match &self.umask {
            None => Command::new(BIN),
            Some(mask) => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c")
                    .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                sh
            }
        };
        cmd.current_dir(&self.cwd).args(self.args());
        for var in PRODUCT_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        if let Some(limit) = self.nofile {
            use std::os::unix::process::CommandExt;
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd
    }

    /// Runs a one-shot command to its end (killed and failed after 20 s).
    pub fn output(&self) -> Output {
        self.output_within(Duration::from_secs(20))
    }

    /// Runs a one-shot command to its end and asserts its exit code.
    #[track_caller]
    pub fn exits(&self, code: i32) -> Output {
        let out = self.output();
        assert_eq!(out.code, Some(code), "{out:#?}");
        out
    }

    pub fn output_within(&self, timeout: Duration) -> Output {
        self.start().output_within(timeout)
    }

    /// Starts a one-shot command in the background, its output read as it comes.
    pub fn start(&self) -> Running {
        let (child, mut out, mut err) = spawn_piped(self.command());
        let out = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let err = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        Running {
            args: self.args(),
            child,
            out,
            err,
        }
    }

    /// Starts the daemon (`run` unless another subcommand was given).
    pub fn spawn_daemon(&self) -> Daemon {
        Daemon::spawn(self)
    }
}

/// A one-shot command started by [`Cmd::start`].
pub struct Running {
    args: Vec<OsString>,
    child: Child,
    out: thread::JoinHandle<String>,
    err: thread::JoinHandle<String>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the command with SIGKILL, as an operator's `kill -9` or a lost session does.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the command to exit, at most `timeout` (then kills it and fails), and returns
    /// its exit code and output.
    pub fn output_within(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let output = Output {
            code: status.and_then(|s| s.code()),
            stdout: self.out.join().unwrap(),
            stderr: self.err.join().unwrap(),
        };
        println!("{:?} -> {output:#?}", self.args);
        assert!(
            status.is_some(),
            "{:?} did not exit within {timeout:?}; output so far: {output:#?}",
            self.args
        );
        output
    }
}

/// Spawns `command` with its stdout and stderr piped, and takes both pipes.
pub fn spawn_piped(mut command: Command) -> (Child, ChildStdout, ChildStderr) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    (child, stdout, stderr)
}

/// The probe URL template on a port of 127.0.0.1.
pub fn probe_url(port: u16) -> String {
    format!("https://127.0.0.1:{port}/v2/{{org_id}}/cloudlookup/{{txn_id}}")
}
