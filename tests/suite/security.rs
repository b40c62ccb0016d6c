//! The security pass, as a user or an attacker would probe it: TLS verification and the
//! `--insecure` warning, no shell between the product and supervisorctl, hostile region and
//! cloud values stopped at every input, no secret in any output, loopback listeners, and the
//! modes of the files the daemon leaves behind.

use crate::support::{
    Cmd, FakeTunnel, Mode, RESTART_ORDER, TestDir, env_for, in_region, text, wait_until,
};
use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn insecure_warns_at_start_and_then_accepts_the_untrusted_tunnel() {
    let (dir, tunnel) = in_region("EU");
    let d = Cmd::new(&dir).insecure(&tunnel).spawn_daemon();
    let lines = d.wait_for_count(|v| v["event"] == "config_warning", 2, WAIT);
    let warning = lines
        .iter()
        .find(|v| v["message"].as_str().unwrap().contains("--insecure"))
        .unwrap_or_else(|| panic!("no --insecure warning\n{}", d.dump()));
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        text(&warning["message"]).contains("TLS verification"),
        "{warning}"
    );
    let first_probe = d
        .json_lines()
        .iter()
        .position(|v| v["event"] == "daemon_started");
    assert_eq!(first_probe, Some(0), "{}", d.dump());
    wait_until(WAIT, "three probes", || tunnel.request_count() >= 3);
    assert!(d.events("probe_failed").is_empty(), "{}", d.dump());
    d.finish();
}

#[test]
fn without_insecure_there_is_no_warning_and_verification_is_on() {
    let (dir, tunnel) = in_region("EU");
    let d = Cmd::new(&dir).untrusted(&tunnel).spawn_daemon();
    // The untrusted certificate is the local tunnel's own: verification refuses it.
    let failed = d.wait_for_event("tunnel_misconfigured", WAIT);
    assert_eq!(failed["error_kind"], "tunnel_misconfigured", "{failed}");
    assert!(
        d.events("config_warning")
            .iter()
            .all(|v| !v["message"].as_str().unwrap().contains("insecure")),
        "{}",
        d.dump()
    );
    assert_eq!(tunnel.request_count(), 0);
    d.finish();
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn the_product_spawns_only_supervisorctl_and_never_a_shell() {
    // The product is the root crate and the kernel's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut spawns = Vec::new();
    for (path, text) in ["src", "crates/kernel/src"]
        .iter()
        .flat_map(|dir| sources(&root.join(dir)))
    {
        // Unit tests below `#[cfg(test)]` may use a shell for their stand-ins.
        let product = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in product.lines().enumerate() {
            if line.contains("Command::new(") {
                spawns.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
            for shell in ["\"sh\"", "/bin/sh", "\"bash\"", "/bin/bash", "/usr/bin/env"] {
                assert!(!line.contains(shell), "{path}:{}: {shell} in {line}", n + 1);
            }
        }
    }
    assert_eq!(spawns.len(), 1, "{spawns:#?}");
    assert!(
        spawns[0].ends_with("Command::new(&self.settings.supervisorctl);"),
        "{spawns:#?}"
    );
}

#[test]
fn a_supervisorctl_path_with_shell_characters_is_run_as_a_path() {
    let dir = TestDir::new();
    let odd = dir.path().join("odd name;touch pwned");
    fs::copy(dir.supervisorctl(), &odd).unwrap();
    Cmd::new(&dir)
        .sub(&["switch", "APAC"])
        .flag("--supervisorctl", odd.to_str().unwrap())
        .exits(0);
    assert_eq!(dir.calls(), RESTART_ORDER.to_vec());
    assert!(!dir.path().join("pwned").exists());
}

/// Values a shell would expand, split or execute.
const HOSTILE: [&str; 12] = [
    "$(reboot)",
    "`id`",
    "a;reboot",
    "\"quoted\"",
    "'quoted'",
    "two words",
    "line\nbreak",
    "a&&b",
    "a|b",
    "$HOME",
    "a>b",
    "tab\there",
];

/// Exit 2, one stderr line naming `origin`, the env file byte for byte as it was, nothing
/// restarted.
fn assert_rejected(dir: &TestDir, cmd: Cmd, origin: &str, value: &str) {
    let before = fs::read(dir.env_file()).unwrap();
    let out = cmd.output();
    assert_eq!(out.code, Some(2), "{value:?} via {origin}: {out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{value:?}: {out:#?}");
    assert!(out.stderr.contains(origin), "{value:?}: {out:#?}");
    assert_eq!(fs::read(dir.env_file()).unwrap(), before, "{value:?}");
    assert!(dir.calls().is_empty(), "{value:?} via {origin}");
}

/// A TOML basic string holding `v` (JSON escapes are valid TOML escapes).
fn toml_str(v: &str) -> String {
    serde_json::Value::String(v.to_owned()).to_string()
}

#[test]
fn hostile_region_and_cloud_values_are_rejected_at_every_input() {
    let dir = TestDir::with_env("EU");
    for v in HOSTILE {
        for list in [
            format!("NAM={v},EU=cloud.eu.ext.com"),
            format!("{v}=cloud.x.ext.com,EU=cloud.eu.ext.com"),
        ] {
            for sub in [&["run"][..], &["switch", "EU"]] {
                let cmd = Cmd::new(&dir)
                    .sub(sub)
                    .env("EXT_CLOUD_FAILOVER_LIST", &list);
                assert_rejected(&dir, cmd, "EXT_CLOUD_FAILOVER_LIST", v);
            }
        }
        for (name, cloud) in [(v, "cloud.x.ext.com"), ("X", v)] {
            let config = dir.write_file(
                "regions.toml",
                &format!(
                    "[[regions]]\nname = {}\ncloud = {}\n[[regions]]\nname = \"EU\"\ncloud = \"cloud.eu.ext.com\"\n",
                    toml_str(name),
                    toml_str(cloud)
                ),
            );
            let cmd = Cmd::new(&dir)
                .sub(&["switch", "EU"])
                .flag("--config", config.to_str().unwrap());
            assert_rejected(&dir, cmd, "regions[0]", v);
        }
        let config = dir.write_file("region.toml", &format!("region = {}\n", toml_str(v)));
        let cmd = Cmd::new(&dir)
            .sub(&["run"])
            .flag("--config", config.to_str().unwrap());
        assert_rejected(&dir, cmd, "region", v);
        let cmd = Cmd::new(&dir).sub(&["run"]).flag("--region", v);
        assert_rejected(&dir, cmd, "--region", v);
        let cmd = Cmd::new(&dir).sub(&["switch", v]);
        assert_rejected(&dir, cmd, "switch", v);
    }
    assert_eq!(dir.read_env(), Some(env_for("EU")));
}

#[test]
fn hostile_env_file_values_never_come_back_out() {
    let dir = TestDir::new();
    dir.write_env("export EXT_CLOUD=$(reboot)\nexport EXT_REGION=\"EU;reboot\"\n");
    let out = Cmd::new(&dir).sub(&["status"]).exits(0);
    assert!(!out.stdout.contains("reboot"), "{out:#?}");
    Cmd::new(&dir)
        .sub(&["switch", "APAC"])
        .switch("--no-restart")
        .exits(0);
    let written = dir.read_env().unwrap();
    assert_eq!(written, env_for("APAC"));
    assert!(
        written
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-= \n".contains(&b)),
        "{written:?}"
    );
}

const DD_KEY: &str = "dd-key-7f3a9c1e5b2d4f6a8c0e1357";
const PROBE_TOKEN: &str = "probe-token-93b1f5d7e2a4c6b8";
const SIG_SECRET: &str = "sig-secret-0d9e8f7a6b5c4d3e";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [DD_KEY, PROBE_TOKEN, SIG_SECRET] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// A Datadog log intake on 127.0.0.1 that answers 202 and keeps each request whole (head, and
/// body unzipped); returns its URL.
fn intake_stand_in() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/v2/logs",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut text = String::new();
            let _ = flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text);
            record.lock().unwrap().push(format!("{head}\n{text}"));
            let _ = reader.get_mut().write_all(
                b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

#[test]
fn no_secret_in_any_output() {
    let dir = TestDir::with_env("EU");
    let config = dir.write_file(
        "failover.toml",
        &format!(
            "[probe]\nheaders = {{ \"X-Api-Token\" = \"{PROBE_TOKEN}\", \"X-SIG-Sha256\" = \"{SIG_SECRET}\" }}\n"
        ),
    );
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("EU", Mode::Status(503))]);
    let (intake, shipped) = intake_stand_in();
    let base = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--config", config.to_str().unwrap())
        .env("DD_API_KEY", DD_KEY)
        .env("FAILOVER_HANDLER_DD_URL", &intake)
        .env("FAILOVER_HANDLER_LOG", "debug");

    let mut d = base.clone().flag("--region", "EU").spawn_daemon();
    d.wait_for_event("restart_done", WAIT);
    wait_until(WAIT, "probes of NAM", || tunnel.requests_in("NAM") >= 3);
    wait_until(WAIT * 2, "a batch at the Datadog intake", || {
        !shipped.lock().unwrap().is_empty()
    });
    d.terminate();
    assert_no_secret("the daemon's stdout", &d.lines().join("\n"));
    assert_no_secret("the daemon's stderr", &d.stderr());
    let sent = tunnel.requests();
    assert_eq!(sent[0].header("X-Api-Token"), Some(PROBE_TOKEN));
    assert_eq!(sent[0].header("X-SIG-Sha256"), Some(SIG_SECRET));

    let runs = [
        base.clone().sub(&["check"]),
        base.clone().sub(&["config"]),
        base.clone().sub(&["status"]),
        base.clone().sub(&["status", "--json"]),
        base.clone().sub(&["switch", "APAC"]),
        base.clone()
            .sub(&["switch", "EU"])
            .flag("--supervisorctl", "/nonexistent/supervisorctl"),
        base.clone().sub(&["switch", "XX"]),
        base.clone().sub(&["run"]).flag("--interval", "bogus"),
    ];
    for cmd in runs {
        let out = cmd.output();
        let what = format!("{:?}", cmd.args());
        assert_no_secret(&what, &out.stdout);
        assert_no_secret(&what, &out.stderr);
    }
    let out = base.sub(&["config"]).output();
    assert!(out.stdout.contains("<redacted>"), "{out:#?}");

    // What went to Datadog: the key only in its header, the probe's secrets nowhere.
    let shipped = shipped.lock().unwrap().clone();
    for request in shipped {
        let (head, body) = request.split_once("\n\n").unwrap();
        assert!(
            head.to_lowercase()
                .contains(&format!("dd-api-key: {DD_KEY}")),
            "{head}"
        );
        assert_no_secret("a Datadog batch", body);
        for secret in [PROBE_TOKEN, SIG_SECRET] {
            assert!(!head.contains(secret), "{head}");
        }
    }
}

/// The local addresses of the TCP sockets `pid` listens on, as `ip:port` text.
fn listening(pid: u32) -> Vec<String> {
    let inodes: HashSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                out.push(decode_addr(cols[1]));
            }
        }
    }
    out
}

/// `0100007F:1F90` -> `127.0.0.1:8080`; IPv6 as `[hex]:port`, `::1` as `[::1]:port`.
fn decode_addr(hex: &str) -> String {
    let (ip, port) = hex.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    if ip.len() == 8 {
        let n = u32::from_str_radix(ip, 16).unwrap();
        let b = n.to_le_bytes();
        format!("{}.{}.{}.{}:{port}", b[0], b[1], b[2], b[3])
    } else if ip == "00000000000000000000000001000000" {
        format!("[::1]:{port}")
    } else {
        format!("[{ip}]:{port}")
    }
}

#[test]
fn listeners_are_on_loopback_by_default() {
    let dir = TestDir::with_env("EU");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--metrics-addr", &port.to_string())
        .exits(0);
    assert!(
        out.stdout.contains(&format!("127.0.0.1:{port}")),
        "{out:#?}"
    );

    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", &port.to_string())
        .spawn_daemon();
    d.wait_for_event("daemon_started", WAIT);
    wait_until(WAIT, "two probes", || tunnel.request_count() >= 2);
    let sockets = listening(d.pid());
    println!("the daemon listens on {sockets:?}");
    for addr in &sockets {
        assert!(
            addr.starts_with("127.") || addr.starts_with("[::1]"),
            "listening on {addr}"
        );
    }
    d.finish();
}

#[test]
fn file_modes_hold_whatever_the_umask() {
    for umask in ["000", "077"] {
        let dir = TestDir::new();
        // APAC with NAM's cloud is not current: the daemon writes the env file whole.
        let inconsistent = env_for("APAC").replace("cloud.apac.ext.com", "cloud.nam.ext.com");
        fs::write(dir.env_file(), inconsistent).unwrap();
        fs::set_permissions(dir.env_file(), fs::Permissions::from_mode(0o666)).unwrap();
        let slow = dir.slow_supervisorctl(0.3);
        let tunnel = FakeTunnel::start(&dir);
        let mut d = Cmd::new(&dir)
            .tunnel(&tunnel)
            .umask(umask)
            .flag("--region", "EU")
            .flag("--supervisorctl", slow.to_str().unwrap())
            .spawn_daemon();
        wait_until(WAIT, "the restart under way", || dir.calls().len() >= 2);
        d.terminate();
        d.wait_for_event("restart_interrupted", WAIT);
        assert_eq!(dir.read_env(), Some(env_for("EU")));
        assert_eq!(mode(&dir.env_file()), 0o644, "env file, umask {umask}");
        assert_eq!(
            mode(&dir.path().join("app/.ext_cloud.env.lock")),
            0o644 & !u32::from_str_radix(umask, 8).unwrap(),
            "lock file, umask {umask}"
        );
        assert_eq!(mode(&dir.state_dir()), 0o700, "state dir, umask {umask}");
        let state_files: Vec<_> = fs::read_dir(dir.state_dir()).unwrap().flatten().collect();
        assert!(!state_files.is_empty());
        for f in state_files {
            assert_eq!(mode(&f.path()), 0o600, "{:?}, umask {umask}", f.path());
        }
    }
}

/// A listener on 127.0.0.1 playing the attacker's supervisord: it notes each connection at
/// once, keeps its bytes (for a second, or until the peer closes) and then hangs up.
fn attacker_listener() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let at = {
                let mut seen = record.lock().unwrap();
                seen.push("a connection".to_string());
                seen.len() - 1
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
            }
            record.lock().unwrap()[at] = String::from_utf8_lossy(&bytes).into_owned();
        }
    });
    (port, seen)
}

/// Root runs `switch` in a directory where somebody else planted a `supervisord.conf` that
/// points at their listener and asks for the handler's secrets as credentials. With every
/// restart path, the listener is never contacted: the working directory's config is not read
/// by the handler nor by the supervisorctl it runs, and the handler's secrets never expand.
#[test]
fn a_supervisord_conf_planted_in_the_working_directory_is_never_used() {
    if !crate::support::have("supervisord", "supervisor") {
        return;
    }
    let real = crate::support::stack::which(&["supervisorctl"]).unwrap();
    let (port, seen) = attacker_listener();
    for via in ["auto", "xmlrpc", "supervisorctl"] {
        let dir = TestDir::with_env("NAM");
        let planted = format!(
            "[supervisorctl]\nserverurl=http://127.0.0.1:{port}\nusername=%(ENV_DD_API_KEY)s\n\
             password=%(ENV_DD_API_KEY)s\n"
        );
        dir.write_file("supervisord.conf", &planted);
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        dir.write_file("etc/supervisord.conf", &planted);
        let out = Cmd::new(&dir)
            .sub(&["switch", "EU"])
            .flag("--supervisorctl", real.to_str().unwrap())
            .flag("--restart-via", via)
            .env("DD_API_KEY", DD_KEY)
            .output();
        let what = format!("switch with restart.via = {via}");
        assert_no_secret(&what, &out.stdout);
        assert_no_secret(&what, &out.stderr);
        assert_eq!(
            *seen.lock().unwrap(),
            Vec::<String>::new(),
            "{what} reached the planted server: {out:#?}"
        );
    }
}

const URL_USER: &str = "url-user-5c1d9e";
const URL_PASS: &str = "url-pass-8e2f4a";
const URL_QUERY: &str = "url-query-3a7b0c";
const CTL_PASS: &str = "ctl-pass-6d4c2b";

/// `GET path` on the daemon's listener: the whole response as text.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

fn assert_no_url_secret(what: &str, text: &str) {
    for secret in [URL_USER, URL_PASS, URL_QUERY, CTL_PASS] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// Credentials in `probe.url`, a `health_url` and `network.throughput_url` (user, password
/// and query) and a supervisorctl password in `restart.args`: the daemon's log lines, the
/// journal, `/history` and `/status`, Datadog, `config`, `check` and `status` show the URLs
/// with `***` in their place, and `config` shows the password as `***`.
#[test]
fn credentials_in_urls_and_restart_args_never_come_out() {
    let dir = TestDir::with_env("NAM");
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let creds = format!("{URL_USER}:{URL_PASS}@");
    let probe_url = format!(
        "{}?token={URL_QUERY}",
        tunnel
            .url()
            .replacen("https://", &format!("https://{creds}"), 1)
    );
    let config = dir.write_file(
        "failover.toml",
        &format!(
            "[[regions]]\nname = \"NAM\"\ncloud = \"cloud.nam.ext.com\"\n\
             [[regions]]\nname = \"EU\"\ncloud = \"cloud.eu.ext.com\"\n\
             [[regions]]\nname = \"APAC\"\ncloud = \"cloud.apac.ext.com\"\n\
             health_url = \"http://{creds}127.0.0.1:1/health?token={URL_QUERY}\"\n\
             [network]\nthroughput_url = \"http://{creds}127.0.0.1:1/blob?token={URL_QUERY}\"\n\
             [restart]\nargs = [\"-u\", \"me\", \"-p\", \"{CTL_PASS}\"]\n"
        ),
    );
    let (intake, shipped) = intake_stand_in();
    let base = Cmd::new(&dir)
        .flag("--probe-url", &probe_url)
        .flag("--config", config.to_str().unwrap())
        .env("DD_API_KEY", DD_KEY)
        .env("FAILOVER_HANDLER_DD_URL", &intake);

    let mut d = base
        .clone()
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = d.wait_for_event("metrics_listening", WAIT)["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    let started = d.wait_for_event("daemon_started", WAIT);
    assert!(
        started["probe_url"].as_str().unwrap().contains("token=***"),
        "{started}"
    );
    wait_until(WAIT * 2, "a batch at the Datadog intake", || {
        !shipped.lock().unwrap().is_empty()
    });
    assert_no_url_secret("/history", &http_get(&addr, "/history"));
    assert_no_url_secret("/status", &http_get(&addr, "/status"));
    for sub in [&["status"][..], &["status", "--json"], &["check"]] {
        let out = base.clone().sub(sub).output();
        assert_no_url_secret(&format!("{sub:?}"), &out.stdout);
        assert_no_url_secret(&format!("{sub:?}"), &out.stderr);
    }
    d.terminate();
    assert_no_url_secret("the daemon's stdout", &d.lines().join("\n"));
    assert_no_url_secret("the daemon's stderr", &d.stderr());
    let journal = fs::read_to_string(dir.state_dir().join("journal.jsonl")).unwrap();
    assert_no_url_secret("the journal", &journal);
    for batch in shipped.lock().unwrap().iter() {
        assert_no_url_secret("a Datadog batch", batch);
    }
    let out = base.sub(&["config"]).exits(0);
    assert_no_url_secret("config", &out.stdout);
    assert_no_url_secret("config", &out.stderr);
    assert!(
        out.stdout.contains("\"-p\",\n    \"***\"") || out.stdout.contains("\"-p\", \"***\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("token=***"), "{}", out.stdout);
}

/// Escape sequences a terminal would act on: clear the screen, set the window title.
const ESCAPES: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r";

fn assert_no_control(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what} prints control characters: {text:?}"
    );
}

/// supervisorctl (or supervisord behind it) answers the pre-check of `switch` with escape
/// sequences: the refusal names what it said, without them.
#[test]
fn switch_prints_what_supervisorctl_said_without_control_characters() {
    let dir = TestDir::with_env("NAM");
    fs::create_dir_all(dir.path().join("bin")).unwrap();
    let ctl = dir.write_script(
        "bin/supervisorctl",
        &format!("printf 'app:application: ERROR (no such process){ESCAPES}\\n'"),
    );
    let out = Cmd::new(&dir)
        .sub(&["switch", "EU"])
        .flag("--supervisorctl", ctl.to_str().unwrap())
        .flag("--restart-via", "supervisorctl")
        .exits(1);
    assert!(out.stderr.contains("no such process"), "{out:#?}");
    assert_no_control("switch's stderr", &out.stderr);
    assert_no_control("switch's stdout", &out.stdout);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
}

/// What listens on the daemon's status address says where the daemon is: `status` shows it
/// without the control characters it holds.
#[test]
fn status_prints_what_the_daemon_said_without_control_characters() {
    let (dir, tunnel) = in_region("NAM");
    let mut d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = d.wait_for_event("metrics_listening", WAIT)["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = http_get(&addr, "/status");
    d.terminate();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let mut snapshot: serde_json::Value = serde_json::from_str(body).unwrap();
    snapshot["active"]["region"] = format!("NAM{ESCAPES}").into();
    snapshot["env_file_error"] = format!("disk full{ESCAPES}").into();
    let body = snapshot.to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let out = Cmd::new(&dir)
        .sub(&["status"])
        .flag("--metrics-addr", &fake)
        .exits(0);
    assert!(out.stdout.contains("disk full"), "{out:#?}");
    assert_no_control("status", &out.stdout);
    assert_no_control("status's stderr", &out.stderr);
}
