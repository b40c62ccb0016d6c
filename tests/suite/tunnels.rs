//! Real tunnels in front of the probe, as deployments have them: stunnel4 with the certificate
//! its documentation makes (self-signed, CA:TRUE, CN=localhost) pinned with `--ca-cert`, and a
//! transparent forward (socat) that shows the cloud's own certificate, verified with
//! `--tls-server-name '{cloud}'`. These are the README's "TLS and tunnels" examples.

use crate::support::stack::which;
use crate::support::{Cmd, FakeTunnel, Mode, TestDir, env_for, free_port, wait_until};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// stunnel's `tools/stunnel.cnf` as its documentation ships it (Debian:
/// /usr/share/doc/stunnel4/examples/openssl.cnf), the config of its certificate recipe.
const STUNNEL_CNF: &str = r#"# OpenSSL configuration file to create a server certificate
# by Michal Trojnara 1998-2023
openssl_conf = openssl_init
config_diagnostics = 1

[openssl_init]
alg_section = evp_properties

[evp_properties]

[ req ]
encrypt_key                     = no
default_bits                    = 2048
default_md                      = sha256
x509_extensions                 = stunnel_extensions
distinguished_name              = stunnel_dn

[ stunnel_extensions ]
nsCertType                      = server, client
basicConstraints                = CA:TRUE,pathlen:0
keyUsage                        = keyCertSign, digitalSignature, keyEncipherment
extendedKeyUsage                = serverAuth, clientAuth
nsComment                       = "stunnel self-signed certificate"

[ stunnel_dn ]
countryName = Country Name (2 letter code)
countryName_default             = PL
countryName_min                 = 2
countryName_max                 = 2
stateOrProvinceName             = State or Province Name (full name)
stateOrProvinceName_default     = Mazovia Province
localityName                    = Locality Name (eg, city)
localityName_default            = Warsaw
organizationName                = Organization Name (eg, company)
organizationName_default        = Stunnel Developers
organizationalUnitName          = Organizational Unit Name (eg, section)
organizationalUnitName_default  = Provisional CA
0.commonName                    = Common Name (FQDN of your server)
0.commonName_default            = localhost
"#;

/// A child process of the test, killed on drop (by its own id).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tools a test needs, or `None` after printing SKIPPED (a failure under CI, where
/// scripts/test.sh installs them).
fn tools(names: &[&[&str]]) -> Option<Vec<PathBuf>> {
    let found: Option<Vec<PathBuf>> = names.iter().map(|n| which(n)).collect();
    if found.is_none() {
        let why = format!("one of {names:?} is not installed (./scripts/test.sh installs them)");
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
    }
    found
}

fn wait_listening(port: u16) {
    wait_until(
        Duration::from_secs(10),
        &format!("a listener on {port}"),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// Makes stunnel's certificate exactly as its manual says (CERTIFICATES):
/// `openssl req -new -x509 -days 365 -nodes -config stunnel.cnf -out stunnel.pem -keyout
/// stunnel.pem`, the prompts answered with their defaults (`-batch`).
fn stunnel_pem(dir: &TestDir, openssl: &Path) -> PathBuf {
    let cnf = dir.write_file("stunnel.cnf", STUNNEL_CNF);
    let pem = dir.path().join("stunnel.pem");
    let out = Command::new(openssl)
        .args(["req", "-new", "-x509", "-days", "365", "-nodes", "-config"])
        .arg(&cnf)
        .arg("-out")
        .arg(&pem)
        .arg("-keyout")
        .arg(&pem)
        .arg("-batch")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = Command::new(openssl)
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("CN = localhost"), "{text}");
    pem
}

/// A plain HTTP server answering 200 to everything: the cloud side of the tunnel.
fn plain_http() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                if s.read(&mut buf).unwrap_or(0) > 0 {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                }
            });
        }
    });
    (port, count)
}

/// stunnel4 on 127.0.0.1 presenting `pem` (key and certificate in one file, as made above) and
/// forwarding to `backend` in plain TCP; returns it and its port.
fn stunnel(dir: &TestDir, bin: &Path, pem: &Path, backend: u16) -> (Running, u16) {
    let port = free_port();
    let conf = dir.write_file(
        "stunnel.conf",
        &format!(
            "foreground = yes\npid =\ndebug = notice\n[tunnel]\naccept = 127.0.0.1:{port}\ncert = {}\nconnect = 127.0.0.1:{backend}\n",
            pem.display()
        ),
    );
    let child = Command::new(bin)
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_listening(port);
    (running, port)
}

fn url_at(host: &str, port: u16) -> String {
    format!("https://{host}:{port}/v2/{{org_id}}/cloudlookup/{{txn_id}}")
}

#[test]
fn stunnels_documented_certificate_pinned_with_ca_cert_is_healthy_across_three_thresholds() {
    let Some(bins) = tools(&[&["openssl"], &["stunnel4", "stunnel"]]) else {
        return;
    };
    let dir = TestDir::new();
    let pem = stunnel_pem(&dir, &bins[0]);
    let (backend, served) = plain_http();
    let (_stunnel, port) = stunnel(&dir, &bins[1], &pem, backend);
    dir.write_env(&env_for("NAM"));
    let pem_arg = pem.display().to_string();
    let cmd = Cmd::new(&dir)
        .flag("--probe-url", &url_at("localhost", port))
        .flag("--ca-cert", &pem_arg);

    let check = cmd.clone().sub(&["check"]).output();
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check.stdout.starts_with("healthy: NAM"), "{check:?}");

    // Threshold 1 s, probes every 100 ms: three thresholds without a single failure.
    let daemon = cmd.spawn_daemon();
    daemon.wait_for_event("env_file_current", Duration::from_secs(10));
    let before = served.load(Ordering::SeqCst);
    wait_until(
        Duration::from_secs(30),
        "three thresholds of probes through stunnel",
        || served.load(Ordering::SeqCst) >= before + 30,
    );
    assert!(
        daemon.events("probe_failed").is_empty(),
        "{}",
        daemon.dump()
    );
    assert!(daemon.events("restarting").is_empty(), "{}", daemon.dump());
    assert_eq!(dir.calls(), Vec::<String>::new(), "{}", daemon.dump());
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    daemon.finish();
}

#[test]
fn stunnels_certificate_is_checked_for_the_name_and_against_the_pinned_file() {
    let Some(bins) = tools(&[&["openssl"], &["stunnel4", "stunnel"]]) else {
        return;
    };
    let dir = TestDir::new();
    let pem = stunnel_pem(&dir, &bins[0]);
    let (backend, _) = plain_http();
    let (_stunnel, port) = stunnel(&dir, &bins[1], &pem, backend);
    dir.write_env(&env_for("NAM"));
    let pem_arg = pem.display().to_string();

    // The certificate names localhost only: 127.0.0.1 is refused unless named explicitly.
    let by_ip = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--probe-url", &url_at("127.0.0.1", port))
        .flag("--ca-cert", &pem_arg);
    let out = by_ip.clone().output();
    assert_eq!(out.code, Some(1), "{out:?}");
    // The tunnel is this host's: a certificate it cannot verify is its configuration.
    assert!(out.stdout.contains(" tunnel_misconfigured: "), "{out:?}");
    assert!(out.stdout.contains("CN=localhost"), "{out:?}");
    assert_plain(&out.stdout);
    let out = by_ip.flag("--tls-server-name", "localhost").output();
    assert_eq!(out.code, Some(0), "{out:?}");

    // Another certificate than the one the tunnel presents: what to pass instead.
    let out = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--probe-url", &url_at("localhost", port))
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "is not signed by --ca-cert {}: pass the certificate the tunnel presents (stunnel's cert) or its CA",
            dir.ca_pem().display()
        )),
        "{out:?}"
    );

    // The system roots do not trust a self-signed tunnel; the error says what to pass.
    let out = Cmd::new(&dir)
        .sub(&["check"])
        .without("--ca-cert")
        .flag("--probe-url", &url_at("localhost", port))
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains(" tunnel_misconfigured: ")
            && out
                .stdout
                .contains("the server presents a CA certificate (CA:TRUE) as its own")
            && out.stdout.contains("--ca-cert"),
        "{out:?}"
    );
}

/// No Rust type names or debug text in what a user reads.
fn assert_plain(text: &str) {
    for debug in ["Other(", "OtherError", "Some(", "DnsName(", "Hint(", "\\\""] {
        assert!(!text.contains(debug), "{debug} in {text}");
    }
}

/// socat forwarding 127.0.0.1:<port> to `target` byte for byte, as a transparent forward
/// (an iptables redirect, stunnel `protocol = connect`) does.
fn socat(bin: &Path, target: u16) -> (Running, u16) {
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!("TCP:127.0.0.1:{target}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_listening(port);
    (running, port)
}

#[test]
fn a_transparent_forward_is_verified_for_the_active_regions_cloud() {
    let Some(bins) = tools(&[&["socat"]]) else {
        return;
    };
    let dir = TestDir::new();
    // The cloud's own certificate, from a private CA (the test CA in ca.pem).
    let cloud = FakeTunnel::fixed(&dir.pki().issue(&["cloud.eu.ext.com"]), Mode::Up);
    let (_socat, port) = socat(&bins[0], cloud.port());
    let cmd = Cmd::new(&dir)
        .flag("--probe-url", &url_at("127.0.0.1", port))
        .flag("--tls-server-name", "{cloud}");

    dir.write_env(&env_for("EU"));
    let out = cmd.clone().sub(&["check"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.starts_with("healthy: EU cloud.eu.ext.com"),
        "{out:?}"
    );
    let served = cloud.request_count();
    assert!(
        served >= 1,
        "the probe did not reach the cloud through socat"
    );

    // Another region's name: the cloud's certificate is not for it.
    dir.write_env(&env_for("NAM"));
    let out = cmd.clone().sub(&["check"]).output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .starts_with("unhealthy: NAM cloud.nam.ext.com tls: "),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(
            "the certificate is not valid for name cloud.nam.ext.com (it is for cloud.eu.ext.com,"
        ),
        "{out:?}"
    );
    assert_plain(&out.stdout);

    // Without --tls-server-name the URL's host is checked, and the error says what to set.
    dir.write_env(&env_for("EU"));
    let out = cmd
        .clone()
        .without("--tls-server-name")
        .sub(&["check"])
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("--tls-server-name '{cloud}'"),
        "{out:?}"
    );

    // The daemon on EU through the forward: healthy across three thresholds.
    let daemon = cmd.spawn_daemon();
    daemon.wait_for_event("env_file_current", Duration::from_secs(10));
    let before = cloud.request_count();
    wait_until(
        Duration::from_secs(30),
        "three thresholds of probes through the forward",
        || cloud.request_count() >= before + 30,
    );
    assert!(
        daemon.events("probe_failed").is_empty(),
        "{}",
        daemon.dump()
    );
    assert_eq!(dir.calls(), Vec::<String>::new(), "{}", daemon.dump());
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    daemon.finish();
}

#[test]
fn tls_settings_that_cannot_work_are_config_errors() {
    let dir = TestDir::new();
    let key_only = dir.write_file(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFdzG2Jm5mJ0Rk9nT2hGS0pQbE1Bd2VzdEJ3ZUZ0Zw==\n-----END PRIVATE KEY-----\n",
    );
    let garbage = dir.write_file("garbage.pem", "hello\n");
    let key_arg = key_only.display().to_string();
    let garbage_arg = garbage.display().to_string();
    let cases: Vec<(Cmd, Vec<&str>)> = vec![
        (
            Cmd::new(&dir).switch("--insecure"),
            vec!["--insecure", "--ca-cert"],
        ),
        (
            Cmd::new(&dir).flag("--ca-cert", &key_arg),
            vec!["--ca-cert", &key_arg, "no certificate"],
        ),
        (
            Cmd::new(&dir).flag("--ca-cert", &garbage_arg),
            vec!["--ca-cert", &garbage_arg, "no certificate"],
        ),
        (
            Cmd::new(&dir).flag("--tls-server-name", "{region}.ext.com"),
            vec!["--tls-server-name", "{cloud}"],
        ),
        (
            Cmd::new(&dir)
                .flag("--tls-server-name", "{cloud}")
                .flag("--probe-url", "http://127.0.0.1:1/health"),
            vec!["--tls-server-name", "https://"],
        ),
    ];
    for (cmd, words) in cases {
        for sub in [&["check"][..], &["run"][..], &["config"][..]] {
            let out = cmd.clone().sub(sub).output();
            assert_eq!(out.code, Some(2), "{out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
            for w in &words {
                assert!(out.stderr.contains(w), "{w} in {out:?}");
            }
        }
    }
    assert_eq!(dir.read_env(), None, "nothing written");
    assert_eq!(dir.calls(), Vec::<String>::new(), "nothing restarted");

    let cfg = dir.write_file(
        "h.toml",
        "[probe]\ninsecure = true\nca_cert = \"/etc/ssl/certs/ca-certificates.crt\"\n",
    );
    let out = Cmd::new(&dir)
        .without("--ca-cert")
        .flag("--config", &cfg.display().to_string())
        .sub(&["config"])
        .output();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("probe.insecure") && out.stderr.contains("probe.ca_cert"),
        "{out:?}"
    );
}

#[test]
fn a_private_ca_verifies_the_tunnel_for_the_urls_host() {
    let dir = TestDir::new();
    dir.write_env(&env_for("EU"));
    // The tunnel's certificate for localhost and 127.0.0.1, signed by the CA in ca.pem.
    let tunnel = FakeTunnel::start(&dir);
    let out = Cmd::new(&dir).tunnel(&tunnel).sub(&["check"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn behind_stunnel_a_stopped_tunnel_is_tunnel_down_and_an_unreachable_cloud_is_reset() {
    let Some(bins) = tools(&[&["openssl"], &["stunnel4", "stunnel"]]) else {
        return;
    };
    let dir = TestDir::new();
    dir.write_env(&env_for("EU"));
    let pem = stunnel_pem(&dir, &bins[0]);
    let pem_arg = pem.display().to_string();
    // The cloud side: a port nothing listens on.
    let (stunnel_proc, port) = stunnel(&dir, &bins[1], &pem, free_port());
    let cmd = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--probe-url", &url_at("localhost", port))
        .flag("--ca-cert", &pem_arg);
    let out = cmd.output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .starts_with("unhealthy: EU cloud.eu.ext.com reset: "),
        "{out:?}"
    );
    drop(stunnel_proc);
    let out = cmd.output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .starts_with("unhealthy: EU cloud.eu.ext.com tunnel_down: "),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "the local tunnel at localhost:{port} refuses connections"
        )),
        "{out:?}"
    );
}

/// `check` against a tunnel port nothing listens on, and against a name that does not
/// resolve: one cause each, said once, in words, then how long the probe took.
#[test]
fn check_names_one_cause_in_words() {
    let dir = TestDir::new();
    dir.write_env(&env_for("EU"));
    let port = free_port();
    let url = url_at("127.0.0.1", port);
    let out = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--probe-url", &url)
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = out.stdout.trim_end();
    let (said, took) = line
        .split_once("; failed after ")
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        said,
        format!(
            "unhealthy: EU cloud.eu.ext.com tunnel_down: the local tunnel at 127.0.0.1:{port} refuses connections"
        )
    );
    assert!(took.ends_with(&format!(" ms ({url})")), "{line}");

    let url = "https://fh-fault-test.invalid:8443/v2/{org_id}/cloudlookup/{txn_id}";
    let out = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--probe-url", url)
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = out.stdout.trim_end();
    assert!(
        line.starts_with(
            "unhealthy: EU cloud.eu.ext.com dns: cannot resolve fh-fault-test.invalid: "
        ),
        "{line}"
    );
    assert!(line.contains("; failed after "), "{line}");
    for noise in ["os error", "failed to lookup address information"] {
        assert!(!line.contains(noise), "{noise}: {line}");
    }
    // What the resolver said, as words in the sentence.
    let cause = line
        .split(": ")
        .nth(3)
        .and_then(|c| c.split(';').next())
        .unwrap_or_default();
    assert!(
        cause.starts_with(|c: char| c.is_ascii_lowercase()),
        "{line}"
    );
}
