//! Checks of the test harness itself, independent of the binary: the supervisorctl
//! stand-in and each mode of the fake tunnel, seen by a plain TLS client.

use crate::support::{FakeTunnel, Mode, SUPERVISOR_ERROR, TestDir, env_for, wait_until};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::io::ErrorKind;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

#[test]
fn stand_in_records_calls_and_fails_on_demand() {
    let dir = TestDir::new();
    assert!(dir.calls().is_empty());
    let ok = Command::new(dir.supervisorctl())
        .args(["stop", "app:application"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(dir.calls(), vec!["stop app:application".to_string()]);

    dir.fail_supervisorctl(true);
    let failed = Command::new(dir.supervisorctl())
        .args(["start", "app:application"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&failed.stdout).trim_end(),
        SUPERVISOR_ERROR
    );
    assert_eq!(dir.calls().len(), 1);
}

/// What one GET through the tunnel gave: the response's first line, or the error kind.
async fn get(dir: &TestDir, port: u16) -> Result<String, ErrorKind> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(dir.ca_der())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.kind())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.kind())?;
    tls.write_all(b"GET /v2/o/cloudlookup/t HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\n\r\n")
        .await
        .map_err(|e| e.kind())?;
    let mut response = Vec::new();
    match timeout(Duration::from_millis(300), tls.read_to_end(&mut response)).await {
        Err(_) => Err(ErrorKind::TimedOut),
        Ok(Err(e)) => Err(e.kind()),
        Ok(Ok(_)) => Ok(String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()),
    }
}

fn get_now(dir: &TestDir, tunnel: &FakeTunnel) -> Result<String, ErrorKind> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(get(dir, tunnel.port()))
}

#[test]
fn tunnel_modes_follow_the_env_file() {
    let dir = TestDir::new();
    let tunnel = FakeTunnel::start_with(
        &dir,
        Mode::Up,
        &[
            ("EU", Mode::Status(503)),
            ("APAC", Mode::Refuse),
            ("RESET", Mode::Reset),
            ("HANG", Mode::Hang),
        ],
    );
    assert_eq!(get_now(&dir, &tunnel).as_deref(), Ok("HTTP/1.1 200 OK"));
    let request = tunnel.requests().pop().unwrap();
    assert_eq!(request.path, "/v2/o/cloudlookup/t");
    assert_eq!(request.header("x-test"), Some("1"));
    assert_eq!(request.region, None);

    dir.write_env(&env_for("EU"));
    assert_eq!(
        get_now(&dir, &tunnel).as_deref(),
        Ok("HTTP/1.1 503 Service Unavailable")
    );
    dir.write_env(&env_for("NAM"));
    assert_eq!(get_now(&dir, &tunnel).as_deref(), Ok("HTTP/1.1 200 OK"));

    dir.write_env("EXT_REGION=RESET\n");
    assert_eq!(get_now(&dir, &tunnel), Err(ErrorKind::ConnectionReset));
    dir.write_env("export EXT_REGION=HANG");
    assert_eq!(get_now(&dir, &tunnel), Err(ErrorKind::TimedOut));

    let connections = tunnel.connection_count();
    dir.write_env(&env_for("APAC"));
    wait_until(Duration::from_secs(5), "the tunnel to refuse", || {
        get_now(&dir, &tunnel) == Err(ErrorKind::ConnectionRefused)
    });
    tunnel.succeed_once("APAC");
    wait_until(Duration::from_secs(5), "one success", || {
        get_now(&dir, &tunnel).is_ok()
    });
    assert!(!tunnel.success_pending("APAC"));
    wait_until(Duration::from_secs(5), "the tunnel to refuse again", || {
        get_now(&dir, &tunnel) == Err(ErrorKind::ConnectionRefused)
    });
    dir.write_env(&env_for("NAM"));
    wait_until(Duration::from_secs(5), "the tunnel to listen again", || {
        get_now(&dir, &tunnel).is_ok()
    });
    assert!(tunnel.connection_count() >= connections + 2);
    assert_eq!(tunnel.requests_in("EU"), 1);
    assert_eq!(tunnel.requests_in("NAM"), 2);
}
