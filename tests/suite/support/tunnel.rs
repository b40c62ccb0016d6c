//! A fake of the local TLS tunnel: an HTTPS server on 127.0.0.1 whose behaviour follows
//! the region the env file names, so an outage can hit one region and spare the next.

use super::TestDir;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::time::{sleep, timeout};
use tokio_rustls::TlsAcceptor;

/// How the tunnel answers while a region is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 with a small JSON body.
    Up,
    /// This HTTP status, e.g. 503.
    Status(u16),
    /// No listener at all: connections are refused at TCP level.
    Refuse,
    /// TLS completes and the request is read, then the connection is reset (RST).
    Reset,
    /// TLS completes and the request is read, then nothing is ever sent.
    Hang,
    /// The TCP connection is accepted, then nothing at all happens: no TLS handshake.
    HangAfterAccept,
    /// The response starts (status line, headers, part of the body), then the connection
    /// is reset (RST).
    ResetMidResponse,
    /// The response head comes one byte every 50 ms.
    TrickleHeaders,
    /// 200 and its headers at once, then the body one byte every 50 ms.
    TrickleBody,
    /// 200 with a 100 MB body, sent as fast as the client reads it.
    HugeBody,
}

/// The size of the `HugeBody` body.
pub const HUGE_BODY: u64 = 100 * 1024 * 1024;

/// Which certificate the tunnel presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cert {
    /// For `localhost` and `127.0.0.1`, signed by the test CA.
    Good,
    /// Signed by the test CA, but for `wrong-name.example` only.
    WrongName,
}

/// One request the tunnel read.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The region the env file named when the request came in.
    pub region: Option<String>,
    /// How it was answered.
    pub mode: Mode,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A CA and a leaf for `localhost` and `127.0.0.1`, generated per test; the CA can issue
/// more leaves (the regional clouds' certificates).
pub struct Pki {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    tunnel: Leaf,
    /// A leaf of the same CA for a name nobody asks for (`Cert::WrongName`).
    wrong_name: Leaf,
}

/// A certificate and its key, in PEM (for stunnel) and DER (for rustls).
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl Leaf {
    pub fn server_config(&self) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .unwrap()
    }
}

impl Pki {
    pub fn generate() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "failover-handler test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let tunnel = issue(&issuer, &["localhost", "127.0.0.1"]);
        let wrong_name = issue(&issuer, &["wrong-name.example"]);
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            issuer,
            tunnel,
            wrong_name,
        }
    }

    /// The certificate of the local tunnel: `localhost` and `127.0.0.1`.
    pub fn tunnel(&self) -> &Leaf {
        &self.tunnel
    }

    /// A new certificate for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        issue(&self.issuer, names)
    }

    fn server_config(&self, cert: Cert) -> ServerConfig {
        match cert {
            Cert::Good => self.tunnel.server_config(),
            Cert::WrongName => self.wrong_name.server_config(),
        }
    }
}

fn issue(issuer: &Issuer<'static, KeyPair>, names: &[&str]) -> Leaf {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

struct State {
    env_file: Option<PathBuf>,
    default: Mode,
    regions: HashMap<String, Mode>,
    up_once: HashSet<String>,
    /// Per region: modes answered in turn, one request after another, and the next index.
    cycles: HashMap<String, (Vec<Mode>, usize)>,
    requests: Vec<Request>,
    connections: usize,
    /// Body bytes written for `HugeBody` responses (what the client read, give or take the
    /// socket buffers).
    body_bytes_sent: u64,
    /// Bumped by every mode change; `applied` catches up once the listener follows it.
    generation: u64,
    applied: u64,
}

impl State {
    /// A fresh state: nothing served yet, no cycles, nothing answered once.
    fn new(env_file: Option<PathBuf>, default: Mode, regions: HashMap<String, Mode>) -> State {
        State {
            env_file,
            default,
            regions,
            up_once: HashSet::new(),
            cycles: HashMap::new(),
            requests: Vec::new(),
            connections: 0,
            body_bytes_sent: 0,
            generation: 0,
            applied: 0,
        }
    }

    fn active_region(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.env_file.as_ref()?).ok()?;
        region_in(&text)
    }

    fn mode_of(&self, region: Option<&str>) -> Mode {
        match region {
            Some(r) if self.up_once.contains(r) => Mode::Up,
            Some(r) => match self.cycles.get(r) {
                Some((modes, next)) => modes[next % modes.len()],
                None => self.regions.get(r).copied().unwrap_or(self.default),
            },
            None => self.default,
        }
    }

    /// The mode for the next request while `region` is active; moves its cycle on.
    fn take_mode(&mut self, region: Option<&str>) -> Mode {
        let mode = self.mode_of(region);
        if let Some(r) = region
            && !self.up_once.remove(r)
            && let Some((_, next)) = self.cycles.get_mut(r)
        {
            *next += 1;
        }
        mode
    }

    fn refusing(&self) -> bool {
        self.mode_of(self.active_region().as_deref()) == Mode::Refuse
    }
}

/// The region an env file's text names (`[export ]EXT_REGION=<R>`).
pub fn region_in(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        (key.trim() == "EXT_REGION").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The fake tunnel; shuts down on drop.
pub struct FakeTunnel {
    port: u16,
    state: Arc<Mutex<State>>,
    runtime: Option<Runtime>,
}

impl FakeTunnel {
    /// A tunnel that follows `dir`'s env file and answers `Up` unless told otherwise.
    pub fn start(dir: &TestDir) -> FakeTunnel {
        FakeTunnel::start_with(dir, Mode::Up, &[])
    }

    /// A tunnel with a default mode and per-region modes set before it accepts anything.
    pub fn start_with(dir: &TestDir, default: Mode, regions: &[(&str, Mode)]) -> FakeTunnel {
        FakeTunnel::start_with_cert(dir, default, regions, Cert::Good)
    }

    /// As `start_with`, presenting `cert`.
    pub fn start_with_cert(
        dir: &TestDir,
        default: Mode,
        regions: &[(&str, Mode)],
        cert: Cert,
    ) -> FakeTunnel {
        let regions = regions.iter().map(|(r, m)| (r.to_string(), *m)).collect();
        let state = State::new(Some(dir.env_file()), default, regions);
        FakeTunnel::serve_with(state, dir.pki().server_config(cert))
    }

    /// A server that ignores the env file and answers in `mode` (changed with `set_default`)
    /// with the certificate `leaf`: a regional cloud behind the real tunnel.
    pub fn fixed(leaf: &Leaf, mode: Mode) -> FakeTunnel {
        let state = State::new(None, mode, HashMap::new());
        FakeTunnel::serve_with(state, leaf.server_config())
    }

    fn serve_with(state: State, config: ServerConfig) -> FakeTunnel {
        let state = Arc::new(Mutex::new(state));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let socket = reserve(0).unwrap();
        let port = socket.local_addr().unwrap().port();
        let first = if state.lock().unwrap().refusing() {
            Port::Reserved(socket)
        } else {
            let _guard = runtime.enter();
            Port::Listening(socket.listen(128).unwrap())
        };
        runtime.spawn(accept_loop(port, first, acceptor, Arc::clone(&state)));
        FakeTunnel {
            port,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The probe URL template through this tunnel.
    pub fn url(&self) -> String {
        super::probe_url(self.port)
    }

    /// The mode of regions without their own, and of requests when no region is named.
    pub fn set_default(&self, mode: Mode) {
        self.change(|s| s.default = mode);
    }

    pub fn set_region(&self, region: &str, mode: Mode) {
        self.change(|s| {
            s.regions.insert(region.to_owned(), mode);
        });
    }

    /// Follows the env file at `path` instead of the test dir's.
    pub fn follow(&self, path: &std::path::Path) {
        self.change(|s| s.env_file = Some(path.to_owned()));
    }

    /// While `region` is active, requests are answered with `modes` in turn, over and over.
    pub fn set_cycle(&self, region: &str, modes: &[Mode]) {
        assert!(!modes.is_empty());
        self.change(|s| {
            s.cycles.insert(region.to_owned(), (modes.to_vec(), 0));
        });
    }

    /// Body bytes sent so far for `HugeBody` responses.
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.lock().unwrap().body_bytes_sent
    }

    /// The next request while `region` is active gets a 200, whatever its mode.
    pub fn succeed_once(&self, region: &str) {
        self.change(|s| {
            s.up_once.insert(region.to_owned());
        });
    }

    /// Applies a mode change and returns once the listener follows it (closed or open).
    fn change(&self, f: impl FnOnce(&mut State)) {
        let generation = {
            let mut state = self.state.lock().unwrap();
            f(&mut state);
            state.generation += 1;
            state.generation
        };
        super::wait_until(Duration::from_secs(5), "the tunnel to apply a mode", || {
            self.state.lock().unwrap().applied >= generation
        });
    }

    /// Whether a `succeed_once` for `region` is still waiting for its request.
    pub fn success_pending(&self, region: &str) -> bool {
        self.state.lock().unwrap().up_once.contains(region)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// Requests that came in while `region` was active.
    pub fn requests_in(&self, region: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| r.region.as_deref() == Some(region))
            .count()
    }

    pub fn connection_count(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

impl Drop for FakeTunnel {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The tunnel's port: listening, or only bound (which refuses every connection at TCP
/// level and keeps the port from being handed to another server meanwhile).
enum Port {
    Listening(TcpListener),
    Reserved(TcpSocket),
}

fn reserve(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(socket)
}

/// Listens while the active region is not refusing; while it is, only holds the port.
async fn accept_loop(port: u16, first: Port, acceptor: TlsAcceptor, state: Arc<Mutex<State>>) {
    let mut slot = Some(first);
    loop {
        let (refusing, generation) = {
            let state = state.lock().unwrap();
            (state.refusing(), state.generation)
        };
        slot = match (slot.take(), refusing) {
            (Some(Port::Listening(listener)), true) => {
                drop(listener);
                reserve(port).ok().map(Port::Reserved)
            }
            (Some(Port::Reserved(socket)), false) => socket.listen(128).ok().map(Port::Listening),
            (None, _) => reserve(port).ok().map(Port::Reserved),
            (kept, _) => kept,
        };
        let Some(Port::Listening(listener)) = &slot else {
            if slot.is_some() {
                state.lock().unwrap().applied = generation;
            }
            sleep(Duration::from_millis(5)).await;
            continue;
        };
        state.lock().unwrap().applied = generation;
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    state.lock().unwrap().connections += 1;
                    tokio::spawn(serve(stream, acceptor.clone(), Arc::clone(&state)));
                }
            }
            _ = sleep(Duration::from_millis(10)) => {}
        }
    }
}

async fn serve(mut stream: TcpStream, acceptor: TlsAcceptor, state: Arc<Mutex<State>>) {
    let hang_after_accept = {
        let state = state.lock().unwrap();
        state.mode_of(state.active_region().as_deref()) == Mode::HangAfterAccept
    };
    if hang_after_accept {
        let mut buf = [0u8; 1024];
        while let Ok(Ok(n)) = timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
        }
        return;
    }
    let Ok(Ok(mut tls)) = timeout(Duration::from_secs(5), acceptor.accept(stream)).await else {
        return;
    };
    let Some(head) = read_head(&mut tls).await else {
        return;
    };
    let (path, headers) = parse_head(&head);
    let mode = {
        let mut state = state.lock().unwrap();
        let region = state.active_region();
        let mode = state.take_mode(region.as_deref());
        state.requests.push(Request {
            path,
            headers,
            region: region.clone(),
            mode,
        });
        mode
    };
    match mode {
        Mode::Up => respond(&mut tls, 200).await,
        Mode::Status(code) => respond(&mut tls, code).await,
        Mode::Reset | Mode::Refuse => {
            let _ = tls.get_ref().0.set_zero_linger();
            drop(tls);
        }
        Mode::Hang | Mode::HangAfterAccept => {
            let mut buf = [0u8; 1024];
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::ResetMidResponse => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"cloudlookup\":";
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.flush().await;
            sleep(Duration::from_millis(20)).await;
            let _ = tls.get_ref().0.set_zero_linger();
            drop(tls);
        }
        Mode::TrickleHeaders => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\nok";
            trickle(&mut tls, head.as_bytes()).await;
        }
        Mode::TrickleBody => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
            if tls.write_all(head.as_bytes()).await.is_ok() {
                trickle(&mut tls, &[b'x'; 1000]).await;
            }
        }
        Mode::HugeBody => huge_body(&mut tls, &state).await,
    }
}

/// Sends `bytes` one at a time, 50 ms apart, until done or the client goes away.
async fn trickle(tls: &mut tokio_rustls::server::TlsStream<TcpStream>, bytes: &[u8]) {
    for b in bytes {
        if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let _ = tls.shutdown().await;
}

/// A 200 whose body is `HUGE_BODY` zero bytes, written in 64 KiB pieces while the client reads.
async fn huge_body(tls: &mut tokio_rustls::server::TlsStream<TcpStream>, state: &Mutex<State>) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {HUGE_BODY}\r\n\r\n"
    );
    if tls.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < HUGE_BODY {
        let write = timeout(Duration::from_secs(5), tls.write_all(&chunk)).await;
        if !matches!(write, Ok(Ok(()))) {
            break;
        }
        sent += chunk.len() as u64;
        state.lock().unwrap().body_bytes_sent += chunk.len() as u64;
    }
    let _ = tls.shutdown().await;
}

async fn respond(tls: &mut tokio_rustls::server::TlsStream<TcpStream>, code: u16) {
    let reason = match code {
        200 => "OK",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Other",
    };
    let body = if code == 200 {
        r#"{"cloudlookup":"ok"}"#
    } else {
        r#"{"error":"unavailable"}"#
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(response.as_bytes()).await;
    let _ = tls.flush().await;
    let _ = tls.shutdown().await;
}

async fn read_head(tls: &mut tokio_rustls::server::TlsStream<TcpStream>) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (path, headers)
}
