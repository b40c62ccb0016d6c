//! The real stack of one test: its own supervisord (own config, socket and temp dir,
//! `nodaemon`, stopped on drop even after a panic) running stunnel between the probe URL and
//! one of three regional clouds (HTTPS fakes on 127.0.0.1 with certificates from the test CA),
//! a cloud-client and an application that source the env file and record their start, a
//! program `broken` that exits at once (supervisord's spawn error), a program `crashing` that
//! exits 1 at once as supervisord retries it (`autorestart`, `startsecs=1`) until it is FATAL,
//! and failover-handler as a program restarting them through supervisord's XML-RPC interface or
//! the real supervisorctl.

use super::{Cmd, FakeTunnel, Mode, PRODUCT_VARS, TestDir, env_for, free_port, wait_until};
use serde_json::Value;
use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The regions in failover order, and their cloud hosts (`cloud.<region>.ext.com`).
pub const REGIONS: [&str; 3] = ["NAM", "EU", "APAC"];

/// The application's programs (group `app`) in the order a restart starts them.
pub const PROGRAMS: [&str; 3] = ["stunnel", "cloud-client", "application"];

/// How long a test waits for anything the stack does.
pub const WAIT: Duration = Duration::from_secs(20);

/// What differs between stacks.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The region the env file names before supervisord starts, whose programs then start
    /// with it (`autostart`); `None`: no env file, the programs wait for the handler.
    pub env_region: Option<&'static str>,
    /// The handler's `failover.threshold`.
    pub threshold: &'static str,
    /// The handler's `probe.interval`.
    pub interval: &'static str,
    /// supervisord's `startsecs` for the application's programs: `supervisorctl start`
    /// returns after this long in RUNNING.
    pub startsecs: u32,
    /// The supervisorctl the handler calls.
    pub supervisorctl: String,
    /// The handler's `restart.via`.
    pub via: &'static str,
    /// A username and password that supervisord's socket requires (and supervisorctl's
    /// section gives).
    pub auth: Option<(&'static str, &'static str)>,
    /// The handler's preferred region (`region` in its config file).
    pub region: Option<&'static str>,
    /// supervisord starts the handler itself when it starts, as in production; otherwise the
    /// test starts it (`start_handler`).
    pub handler_autostart: bool,
    /// The handler's `probe.ca_cert` names the test CA that signed the tunnel's certificate;
    /// without it the probe has only the system roots, as the shipped example config does.
    pub ca_cert: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            env_region: Some("NAM"),
            threshold: "1s",
            interval: "250ms",
            startsecs: 0,
            supervisorctl: "supervisorctl".into(),
            via: "auto",
            auth: None,
            region: None,
            handler_autostart: false,
            ca_cert: true,
        }
    }
}

/// One regional cloud: an HTTPS server presenting a certificate for its host.
pub struct Cloud {
    pub region: &'static str,
    pub host: String,
    server: FakeTunnel,
}

impl Cloud {
    /// Up, a status such as 503, refused, reset or hanging, from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.server.set_default(mode);
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests it answered with 200 so far.
    pub fn ok_count(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.mode == Mode::Up)
            .count()
    }
}

/// One start of a program, as it recorded it after sourcing the env file.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub program: String,
    pub pid: u32,
    pub region: String,
    pub cloud: String,
    /// Seconds since the epoch (bash's `$EPOCHREALTIME`).
    pub at: f64,
}

/// The running stack.
pub struct Stack {
    pub dir: TestDir,
    pub clouds: Vec<Cloud>,
    /// Where stunnel listens: the probe URL's port.
    pub tunnel_port: u16,
    pub options: StackOptions,
    supervisord: Option<Child>,
    /// Given back once the stack is down (fields drop after `Drop::drop`).
    _slot: super::HeavySlot,
}

/// The first of `names` found on the PATH.
pub fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Stack {
    /// Starts a stack, or returns `None` after printing SKIPPED when supervisord or stunnel
    /// is missing (under CI, where the test command installs them, that is a failure).
    pub fn start(options: StackOptions) -> Option<Stack> {
        let supervisord = which(&["supervisord"]);
        let supervisorctl = which(&["supervisorctl"]);
        let stunnel = which(&["stunnel4", "stunnel"]);
        let (Some(_), Some(_), Some(stunnel)) = (supervisord, supervisorctl, stunnel) else {
            let why = "supervisord, supervisorctl or stunnel is not installed (./scripts/test.sh installs them)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let slot = super::HeavySlot::take();
        let dir = TestDir::new();
        let clouds = REGIONS
            .iter()
            .map(|region| {
                let host = format!("cloud.{}.ext.com", region.to_lowercase());
                let leaf = dir.pki().issue(&[&host]);
                Cloud {
                    region,
                    host,
                    server: FakeTunnel::fixed(&leaf, Mode::Up),
                }
            })
            .collect();
        let mut stack = Stack {
            dir,
            clouds,
            tunnel_port: free_port(),
            options,
            supervisord: None,
            _slot: slot,
        };
        stack.write_files(&stunnel);
        if let Some(region) = stack.options.env_region {
            stack.dir.write_env(&env_for(region));
        }
        stack.start_supervisord();
        if stack.options.env_region.is_some() {
            stack.wait_tunnel_listening();
        }
        Some(stack)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn conf(&self) -> PathBuf {
        self.path("supervisord.conf")
    }

    /// The handler's config file.
    pub fn handler_config(&self) -> PathBuf {
        self.path("failover-handler.toml")
    }

    pub fn cloud(&self, region: &str) -> &Cloud {
        self.clouds
            .iter()
            .find(|c| c.region == region)
            .unwrap_or_else(|| panic!("no cloud {region}"))
    }

    fn write_files(&self, stunnel: &Path) {
        let d = self.dir.path().display().to_string();
        let env = self.dir.env_file().display().to_string();
        let pki = self.dir.pki();
        fs::write(self.path("tunnel.pem"), &pki.tunnel().cert_pem).unwrap();
        fs::write(self.path("tunnel.key"), &pki.tunnel().key_pem).unwrap();

        let ports: String = self
            .clouds
            .iter()
            .map(|c| format!("  {}) port={} ;;\n", c.host, c.port()))
            .collect();
        let tunnel = format!(
            r#"#!/bin/bash
# The tunnel to the region the env file names (the program's command sourced it): stunnel
# accepts TLS for the probe URL with the tunnel's own certificate and connects over TLS to
# that region's cloud, checked against the test CA. No subprocess: the pid stays stunnel's.
set -eu
if [ -e "{d}/tunnel.broken" ]; then
  echo "tunnel: cannot start ({d}/tunnel.broken exists)" >&2
  exit 1
fi
if [ -e "{d}/tunnel.delay" ]; then
  sleep "$(cat "{d}/tunnel.delay")"
fi
case "$EXT_CLOUD" in
{ports}  *) echo "tunnel: unknown cloud '$EXT_CLOUD'" >&2; exit 1 ;;
esac
conf="{d}/stunnel.$$.conf"
back="{d}/back.$$.sock"
printf '%s\n' "foreground = yes" "pid =" "debug = notice" \
  "[front]" "accept = 127.0.0.1:{tp}" "cert = {d}/tunnel.pem" "key = {d}/tunnel.key" \
  "connect = $back" \
  "[back]" "client = yes" "accept = $back" "connect = 127.0.0.1:$port" "sni = $EXT_CLOUD" \
  "verifyChain = yes" "CAfile = {d}/ca.pem" "checkHost = $EXT_CLOUD" > "$conf"
echo "stunnel $$ $EXT_REGION $EXT_CLOUD $EPOCHREALTIME" >> "{d}/starts.log"
exec {stunnel} "$conf"
"#,
            tp = self.tunnel_port,
            stunnel = stunnel.display(),
        );
        let script = self.path("tunnel.sh");
        fs::write(&script, tunnel).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();

        let autostart = self.options.env_region.is_some();
        let startsecs = self.options.startsecs;
        let program = |name: &str, exec: &str| {
            format!(
                "[program:{name}]\n\
                 command=bash -c '. {env} && {exec}'\n\
                 autostart={autostart}\n\
                 autorestart=false\n\
                 startsecs={startsecs}\n\
                 stopwaitsecs=5\n\
                 stdout_logfile={d}/{name}.out\n\
                 stderr_logfile={d}/{name}.err\n\n"
            )
        };
        let sleeper = |name: &str| {
            program(
                name,
                &format!(
                    "echo \"{name} $$ $EXT_REGION $EXT_CLOUD $EPOCHREALTIME\" >> {d}/starts.log && exec sleep 600"
                ),
            )
        };
        let credentials = match self.options.auth {
            Some((user, pass)) => format!("username={user}\npassword={pass}\n"),
            None => String::new(),
        };
        let conf = format!(
            "[unix_http_server]\n\
             file={d}/supervisor.sock\n\
             {credentials}\n\
             [supervisord]\n\
             nodaemon=true\n\
             logfile={d}/supervisord.log\n\
             logfile_maxbytes=0\n\
             pidfile={d}/supervisord.pid\n\
             childlogdir={d}\n\
             loglevel=info\n\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\n\
             serverurl=unix://{d}/supervisor.sock\n\
             {credentials}\n\
             [group:app]\n\
             programs=stunnel,cloud-client,application\n\n\
             {stunnel}{client}{application}\
             [program:broken]\n\
             command=/bin/false\n\
             autostart=false\n\
             startsecs=1\n\
             startretries=0\n\
             stdout_logfile={d}/broken.out\n\n\
             [program:crashing]\n\
             command=bash -c 'echo crashing: cannot reach its cloud >&2; exit 1'\n\
             autostart=false\n\
             autorestart=true\n\
             startsecs=1\n\
             startretries=1\n\
             stderr_logfile={d}/crashing.err\n\n\
             [program:failover-handler]\n\
             command={bin} run --config {d}/failover-handler.toml --supervisorctl {ctl}\n\
             environment=CONNECTION_KEEPALIVE_ORG_ID=\"org1\",CONNECTION_KEEPALIVE_TXN_ID=\"txn1\"\n\
             autostart={handler_autostart}\n\
             autorestart=false\n\
             startsecs=0\n\
             stopsignal=TERM\n\
             stopwaitsecs=5\n\
             stdout_logfile={d}/failover-handler.out\n\
             stdout_logfile_maxbytes=0\n\
             stderr_logfile={d}/failover-handler.err\n",
            stunnel = program("stunnel", &format!("exec {d}/tunnel.sh")),
            client = sleeper("cloud-client"),
            application = sleeper("application"),
            bin = super::BIN,
            ctl = self.options.supervisorctl,
            handler_autostart = self.options.handler_autostart,
        );
        fs::write(self.conf(), conf).unwrap();

        let regions: String = self
            .clouds
            .iter()
            .map(|c| {
                format!(
                    "[[regions]]\nname = \"{}\"\ncloud = \"{}\"\n",
                    c.region, c.host
                )
            })
            .collect();
        let region = self
            .options
            .region
            .map(|r| format!("region = \"{r}\"\n"))
            .unwrap_or_default();
        let config = format!(
            "{region}state_dir = \"{d}/state\"\n\
             {regions}\n\
             [env_file]\n\
             path = \"{env}\"\n\n\
             [probe]\n\
             url = \"https://127.0.0.1:{tp}/v2/{{org_id}}/cloudlookup/{{txn_id}}\"\n\
             interval = \"{interval}\"\n\
             timeout = \"200ms\"\n\
             {ca_cert}\n\
             [failover]\n\
             threshold = \"{threshold}\"\n\n\
             [restart]\n\
             via = \"{via}\"\n\
             args = [\"-c\", \"{conf}\"]\n\
             timeout = \"10s\"\n",
            tp = self.tunnel_port,
            interval = self.options.interval,
            threshold = self.options.threshold,
            conf = self.conf().display(),
            via = self.options.via,
            ca_cert = if self.options.ca_cert {
                format!("ca_cert = \"{d}/ca.pem\"\n")
            } else {
                String::new()
            },
        );
        fs::write(self.handler_config(), config).unwrap();
    }

    /// Starts supervisord (again) with the stack's config and waits until it answers.
    pub fn start_supervisord(&mut self) {
        assert!(self.supervisord.is_none(), "supervisord is running already");
        let mut cmd = Command::new("supervisord");
        cmd.args(["-n", "-c"])
            .arg(self.conf())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for var in PRODUCT_VARS.iter().chain(&["FAILOVER_HANDLER_LOG"]) {
            cmd.env_remove(var);
        }
        // The handler lists itself in this stack's own runtime directory.
        cmd.env("XDG_RUNTIME_DIR", self.path("run"));
        cmd.env(
            "FAILOVER_HANDLER_RUNTIME_DIR",
            self.path("run").join("failover-handler"),
        );
        self.supervisord = Some(cmd.spawn().unwrap());
        let socket = self.path("supervisor.sock");
        wait_until(WAIT, "supervisord's socket", || socket.exists());
        wait_until(WAIT, "supervisord to answer", || {
            self.ctl(&["pid"]).status.success()
        });
    }

    /// Stops supervisord as `kill -TERM` does (it stops every program first) and waits.
    pub fn stop_supervisord(&mut self) {
        let mut child = self.supervisord.take().expect("supervisord is not running");
        send_signal(child.id(), "-TERM");
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("supervisord did not stop within {WAIT:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stunnel accepts on the probe URL's port.
    pub fn wait_tunnel_listening(&self) {
        wait_until(WAIT, "stunnel to listen", || {
            TcpStream::connect(("127.0.0.1", self.tunnel_port)).is_ok()
        });
    }

    /// `supervisorctl -c <conf> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new("supervisorctl")
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The pid supervisord reports for `app:<program>` (0 when it is not running).
    pub fn pid(&self, program: &str) -> u32 {
        let out = self.ctl(&["pid", &format!("app:{program}")]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// The pids of `PROGRAMS`, in that order.
    pub fn pids(&self) -> Vec<u32> {
        PROGRAMS.iter().map(|p| self.pid(p)).collect()
    }

    /// Every program start so far, in order.
    pub fn starts(&self) -> Vec<Start> {
        let text = fs::read_to_string(self.path("starts.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Some(Start {
                    program: f.first()?.to_string(),
                    pid: f.get(1)?.parse().ok()?,
                    region: f.get(2)?.to_string(),
                    cloud: f.get(3)?.to_string(),
                    at: f.get(4)?.parse().ok()?,
                })
            })
            .collect()
    }

    pub fn supervisord_log(&self) -> String {
        fs::read_to_string(self.path("supervisord.log")).unwrap_or_default()
    }

    /// supervisord's record of the application's programs: `stopped <name>` and
    /// `spawned <name>`, in order.
    pub fn program_events(&self) -> Vec<String> {
        self.supervisord_log()
            .lines()
            .filter_map(|line| {
                if let Some(rest) = line.split("spawned: '").nth(1) {
                    let name = rest.split('\'').next()?;
                    return PROGRAMS.contains(&name).then(|| format!("spawned {name}"));
                }
                let rest = line.split("stopped: ").nth(1)?;
                let name = rest.split(' ').next()?;
                PROGRAMS.contains(&name).then(|| format!("stopped {name}"))
            })
            .collect()
    }

    /// Starts the handler as a program of this supervisord.
    pub fn start_handler(&self) -> HandlerLog {
        let out = self.ctl(&["start", "failover-handler"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("started"),
            "supervisorctl start failover-handler: {out:?}"
        );
        self.handler_log()
    }

    /// The log of the handler run by supervisord.
    pub fn handler_log(&self) -> HandlerLog {
        HandlerLog {
            out: self.path("failover-handler.out"),
            err: self.path("failover-handler.err"),
        }
    }

    /// The handler as its own process (not a program of this supervisord), with the same
    /// config: for what supervisord cannot run, such as supervisord going away.
    pub fn handler_cmd(&self) -> Cmd {
        Cmd::bare(&self.dir)
            .sub(&["run"])
            .flag("--config", &self.handler_config().display().to_string())
            .flag("--supervisorctl", &self.options.supervisorctl)
    }

    /// Waits until `region`'s cloud has answered `n` more probes with 200.
    pub fn wait_ok_probes(&self, region: &str, n: usize) {
        let cloud = self.cloud(region);
        let target = cloud.ok_count() + n;
        wait_until(WAIT, &format!("{n} healthy probes in {region}"), || {
            cloud.ok_count() >= target
        });
    }

    /// From now on `tunnel.sh` exits 1 before it starts stunnel, for every region: the tunnel
    /// cannot start.
    pub fn break_tunnel(&self) {
        fs::write(self.path("tunnel.broken"), "").unwrap();
    }

    /// From now on `tunnel.sh` waits `secs` before it starts stunnel: each restart leaves the
    /// probe's port closed that long, as a tunnel that takes its time to come up does.
    pub fn delay_tunnel(&self, secs: f64) {
        fs::write(self.path("tunnel.delay"), secs.to_string()).unwrap();
    }

    /// The env file's bytes as they are now (empty when it is missing).
    pub fn env_bytes(&self) -> Vec<u8> {
        fs::read(self.dir.env_file()).unwrap_or_default()
    }

    /// `supervisorctl status failover-handler`: its state word (`RUNNING`, `EXITED`, …).
    pub fn handler_state(&self) -> String {
        let out = self.ctl(&["status", "failover-handler"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// The handler's pid as supervisord reports it (0 when it is not running).
    pub fn handler_pid(&self) -> u32 {
        let out = self.ctl(&["pid", "failover-handler"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// A restart as supervisord records it: stop application, cloud-client, stunnel; start
/// stunnel, cloud-client, application.
pub const RESTART: [&str; 6] = [
    "stopped application",
    "stopped cloud-client",
    "stopped stunnel",
    "spawned stunnel",
    "spawned cloud-client",
    "spawned application",
];

/// A stack with `opts` whose handler has started, found the env file current and seen
/// `probes` good probes of NAM; `None` where the stack cannot run (the test then passes as
/// SKIPPED).
pub fn settled_on_nam(opts: StackOptions, probes: usize) -> Option<(Stack, HandlerLog)> {
    let stack = Stack::start(opts)?;
    let log = stack.start_handler();
    log.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", probes);
    Some((stack, log))
}

/// The programs of `starts`, in order.
pub fn programs(starts: &[Start]) -> Vec<&str> {
    starts.iter().map(|s| s.program.as_str()).collect()
}

/// The starts recorded after the first `before`, once the three programs have recorded
/// theirs, in restart order. A program records its start after supervisord has spawned it, so
/// a restart through XML-RPC (a few milliseconds for all three) can be done before the last
/// line is written, and the programs' own lines can land in any order: the order of the
/// restart is asserted from supervisord's log (`program_events`).
pub fn new_starts(stack: &Stack, before: usize) -> Vec<Start> {
    wait_until(WAIT, "the programs to record their start", || {
        stack.starts().len() >= before + PROGRAMS.len()
    });
    let mut starts = stack.starts()[before..].to_vec();
    starts.sort_by_key(|s| PROGRAMS.iter().position(|p| *p == s.program));
    starts
}

/// Asserts the starts are one start of each program on `region`.
pub fn assert_started_on(starts: &[Start], region: &str) {
    assert_eq!(programs(starts), PROGRAMS, "{starts:#?}");
    for s in starts {
        assert_eq!(s.region, region, "{s:?}");
        assert_eq!(s.cloud, format!("cloud.{}.ext.com", region.to_lowercase()));
    }
}

/// Every program runs, and its last start was on `region`.
pub fn assert_running_on(stack: &Stack, region: &str) {
    let starts = stack.starts();
    let last: Vec<Start> = PROGRAMS
        .iter()
        .map(|p| {
            starts
                .iter()
                .rev()
                .find(|s| s.program == *p)
                .unwrap()
                .clone()
        })
        .collect();
    assert_started_on(&last, region);
    assert_eq!(
        stack.pids(),
        last.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "{}",
        stack.supervisord_log()
    );
}

impl Drop for Stack {
    fn drop(&mut self) {
        let Some(mut child) = self.supervisord.take() else {
            return;
        };
        send_signal(child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                for start in self.starts() {
                    let cmdline = fs::read(format!("/proc/{}/cmdline", start.pid))
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    if cmdline.contains("sleep") || cmdline.contains("stunnel") {
                        send_signal(start.pid, "-KILL");
                    }
                }
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The JSON lines a handler run by supervisord printed, read from its stdout log.
pub struct HandlerLog {
    out: PathBuf,
    err: PathBuf,
}

impl HandlerLog {
    pub fn lines(&self) -> Vec<Value> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn events(&self, name: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v["event"] == name)
            .collect()
    }

    /// The first `n` lines with `event` = `name`, waiting up to `timeout`.
    pub fn wait_for_count(&self, name: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.events(name);
            if found.len() >= n {
                return found.into_iter().take(n).collect();
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {n} {name:?} lines\n{}",
                self.dump()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_for_event(&self, name: &str, timeout: Duration) -> Value {
        self.wait_for_count(name, 1, timeout).remove(0)
    }

    pub fn dump(&self) -> String {
        format!(
            "--- handler stdout ---\n{}--- handler stderr ---\n{}",
            fs::read_to_string(&self.out).unwrap_or_default(),
            fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
}
