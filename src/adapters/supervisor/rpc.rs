//! supervisord's XML-RPC interface, spoken directly: an HTTP/1.1 `POST /RPC2` over its unix
//! socket or TCP port, with HTTP Basic auth when it asks for credentials. One connection per
//! call, as supervisorctl does; a call over the unix socket takes well under a millisecond
//! besides what supervisord itself waits for.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::action::Action;
use super::conf::{ServerUrl, Target};
use super::program_state::{ProgramState, Started};
use super::xmlrpc::{self, Param, Response};
use crate::kernel::resume::Seen;

/// supervisord's fault codes (`supervisor.xmlrpc.Faults`) that a stop or start can meet.
pub mod faults {
    pub const SHUTDOWN_STATE: i64 = 6;
    pub const BAD_NAME: i64 = 10;
    pub const NO_FILE: i64 = 20;
    pub const NOT_EXECUTABLE: i64 = 21;
    pub const FAILED: i64 = 30;
    pub const ABNORMAL_TERMINATION: i64 = 40;
    pub const SPAWN_ERROR: i64 = 50;
    pub const ALREADY_STARTED: i64 = 60;
    pub const NOT_RUNNING: i64 = 70;
}

/// Answers larger than this are not supervisord's answers to a stop or a start.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// One XML-RPC call that did not succeed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RpcError {
    /// The socket is missing, refuses, or closed during the call: supervisord is not there.
    #[error("supervisord is not reachable at {url}: {reason}")]
    Down { url: String, reason: String },
    /// HTTP 401: the username or password is wrong or missing.
    #[error("supervisord at {url} refused the credentials (HTTP 401){}", if *.sent { "" } else { "; none were configured" })]
    AuthRefused { url: String, sent: bool },
    /// A fault supervisord answered with.
    #[error("supervisord answered fault {code}: {message}")]
    Fault { code: i64, message: String },
    /// An answer that is not XML-RPC, or an HTTP status other than 200 and 401.
    #[error("unexpected answer from supervisord at {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// supervisorctl's config could not be used to find supervisord.
    #[error("{0}")]
    Config(String),
}

impl RpcError {
    /// A short word for logs, distinct for each failure a user acts on differently.
    pub fn kind(&self) -> &'static str {
        match self {
            RpcError::Down { .. } => "supervisord_down",
            RpcError::AuthRefused { .. } => "auth_refused",
            RpcError::Fault { code, .. } => match *code {
                faults::BAD_NAME => "no_such_process",
                // The command is missing or not executable: it cannot be spawned either.
                faults::SPAWN_ERROR | faults::NO_FILE | faults::NOT_EXECUTABLE => "spawn_error",
                faults::ABNORMAL_TERMINATION => "abnormal_termination",
                faults::FAILED => "failed",
                faults::SHUTDOWN_STATE => "supervisord_down",
                faults::NOT_RUNNING => "not_running",
                faults::ALREADY_STARTED => "already_started",
                _ => "fault",
            },
            RpcError::Protocol { .. } => "protocol",
            RpcError::Config(_) => "config",
        }
    }

    /// supervisord's fault code, when it answered with one.
    pub fn fault_code(&self) -> Option<i64> {
        match self {
            RpcError::Fault { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client of one supervisord.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    /// `Basic …`, when credentials are configured.
    authorization: Option<http::HeaderValue>,
}

impl Client {
    pub fn new(target: Target) -> Self {
        let authorization = target.username.as_ref().map(|user| {
            let pass = target.password.as_ref().map_or("", |p| p.expose());
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            let mut value = http::HeaderValue::from_str(&format!("Basic {token}"))
                .unwrap_or_else(|_| http::HeaderValue::from_static(""));
            value.set_sensitive(true);
            value
        });
        Client {
            target,
            authorization,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether supervisord accepts a connection now (a connect, no request).
    pub async fn reachable(&self, within: Duration) -> Result<(), RpcError> {
        let down = |reason: String| RpcError::Down {
            url: self.target.url.to_string(),
            reason,
        };
        let connect = async {
            match &self.target.url {
                ServerUrl::Unix(path) => UnixStream::connect(path).await.map(drop),
                ServerUrl::Http { host, port } => {
                    TcpStream::connect((host.as_str(), *port)).await.map(drop)
                }
            }
        };
        match tokio::time::timeout(within, connect).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(down(e.to_string())),
            Err(_) => Err(down(format!(
                "no connection within {}",
                crate::config::duration_text(within)
            ))),
        }
    }

    /// `supervisor.stopProcess(name, true)` or `supervisor.startProcess(name, true)`: returns
    /// when supervisord has stopped it, or started it and seen it RUNNING. "Not running" on
    /// stop is success; "already started" on start is an error (`already_started`) that says
    /// nothing of when, or whether it still runs.
    pub async fn act(&self, action: Action, program: &str) -> Result<(), RpcError> {
        let method = match action {
            Action::Stop => "supervisor.stopProcess",
            Action::Start => "supervisor.startProcess",
        };
        match self
            .call(method, &[Param::Str(program), Param::Bool(true)])
            .await
        {
            Ok(_) => Ok(()),
            Err(RpcError::Fault { code, .. })
                if action == Action::Stop && code == faults::NOT_RUNNING =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `supervisor.getProcessInfo(name)`: whether the program is up (STARTING or RUNNING) and
    /// when supervisord last started it.
    pub async fn process_info(&self, program: &str) -> Result<Seen, RpcError> {
        let state = self.program_state(program).await?;
        Ok(Seen {
            up: matches!(state.state.as_str(), "STARTING" | "RUNNING"),
            started_at_s: match state.started {
                Started::At(start) => start,
                Started::Uptime { .. } | Started::Unknown => 0,
            },
        })
    }

    /// `supervisor.getProcessInfo(name)` as supervisord states it: its state name, its
    /// description and when it was last started.
    pub async fn program_state(&self, program: &str) -> Result<ProgramState, RpcError> {
        let value = self
            .call("supervisor.getProcessInfo", &[Param::Str(program)])
            .await?;
        let field = |name: &str| match &value {
            xmlrpc::Value::Struct(fields) => fields.iter().find(|(k, _)| k == name).map(|f| &f.1),
            _ => None,
        };
        match (field("statename"), field("start")) {
            (Some(xmlrpc::Value::Str(state)), Some(xmlrpc::Value::Int(start))) => {
                Ok(ProgramState {
                    state: state.clone(),
                    detail: match field("description") {
                        Some(xmlrpc::Value::Str(d)) => d.clone(),
                        _ => String::new(),
                    },
                    started: Started::At(u64::try_from(*start).unwrap_or(0)),
                })
            }
            _ => Err(RpcError::Protocol {
                url: self.target.url.to_string(),
                reason: format!("getProcessInfo({program}) has no statename and start"),
            }),
        }
    }

    /// One call: its value, or why there is none.
    pub async fn call(
        &self,
        method: &str,
        params: &[Param<'_>],
    ) -> Result<xmlrpc::Value, RpcError> {
        let url = self.target.url.to_string();
        let down = |reason: String| RpcError::Down {
            url: url.clone(),
            reason,
        };
        let host = match &self.target.url {
            ServerUrl::Unix(_) => "localhost".to_string(),
            ServerUrl::Http { host, port } => format!("{host}:{port}"),
        };
        let body = xmlrpc::encode_call(method, params);
        let mut request = Request::post("/RPC2")
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "text/xml")
            .header(http::header::CONNECTION, "close");
        if let Some(auth) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, auth.clone());
        }
        let request =
            request
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| RpcError::Protocol {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        let (status, bytes) = match &self.target.url {
            ServerUrl::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|e| down(e.to_string()))?;
                exchange(stream, request).await
            }
            ServerUrl::Http { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| down(e.to_string()))?;
                let _ = stream.set_nodelay(true);
                exchange(stream, request).await
            }
        }
        .map_err(down)?;
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(RpcError::AuthRefused {
                url,
                sent: self.authorization.is_some(),
            });
        }
        if status != http::StatusCode::OK {
            return Err(RpcError::Protocol {
                url,
                reason: format!("HTTP status {}", status.as_u16()),
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        match xmlrpc::decode_response(&text) {
            Ok(Response::Value(v)) => Ok(v),
            Ok(Response::Fault { code, message }) => Err(RpcError::Fault { code, message }),
            Err(e) => Err(RpcError::Protocol {
                url,
                reason: e.to_string(),
            }),
        }
    }
}

/// Sends `request` on a fresh connection and reads the whole answer; an error here means the
/// connection failed or closed early.
async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // Ended with the call, even when a timeout drops the call half-way.
    let _driver = AbortOnDrop(tokio::spawn(connection));
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    drop(sender);
    result
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::path::PathBuf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    const TRUE: &str = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><boolean>1</boolean></value>\n</param>\n</params>\n</methodResponse>\n";

    fn fault(code: i64, text: &str) -> String {
        format!(
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>{code}</int></value></member>\
             <member><name>faultString</name><value><string>{text}</string></value></member></struct></value></fault></methodResponse>"
        )
    }

    /// A one-shot stand-in of supervisord on a unix socket: answers each connection with
    /// `status` and `body`, and hands back each request it read.
    async fn serve(
        path: PathBuf,
        answers: Vec<(u16, String)>,
    ) -> tokio::task::JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(at) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if got.len() >= at + 4 + len {
                            break;
                        }
                    }
                }
                seen.push(String::from_utf8_lossy(&got).into_owned());
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
            }
            seen
        })
    }

    fn client(path: PathBuf, user: Option<&str>) -> Client {
        Client::new(Target {
            url: ServerUrl::Unix(path),
            username: user.map(str::to_string),
            password: user.map(|_| Secret::new("pw")),
            config: None,
        })
    }

    #[tokio::test]
    async fn calls_post_rpc2_with_basic_auth_and_map_faults() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let server = serve(
            sock.clone(),
            vec![
                (200, TRUE.into()),
                (200, fault(70, "NOT_RUNNING: a")),
                (200, fault(60, "ALREADY_STARTED: a")),
                (200, fault(10, "BAD_NAME: nope")),
                (200, fault(50, "SPAWN_ERROR: a")),
                (401, "Unauthorized".into()),
                (200, "<html/>".into()),
            ],
        )
        .await;
        let c = client(sock.clone(), Some("me"));
        assert_eq!(c.act(Action::Stop, "app:a").await, Ok(()));
        assert_eq!(c.act(Action::Stop, "app:a").await, Ok(()));
        let kinds = [
            c.act(Action::Start, "app:a").await,
            c.act(Action::Stop, "nope").await,
            c.act(Action::Start, "a").await,
            c.act(Action::Start, "a").await,
            c.act(Action::Start, "a").await,
        ]
        .map(|r| r.unwrap_err().kind());
        assert_eq!(
            kinds,
            [
                "already_started",
                "no_such_process",
                "spawn_error",
                "auth_refused",
                "protocol"
            ]
        );
        let seen = server.await.unwrap();
        assert!(
            seen[0].starts_with("POST /RPC2 HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        // "me:pw" in base64.
        assert!(
            seen[0].contains("authorization: Basic bWU6cHc=\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].contains("<methodName>supervisor.stopProcess</methodName><params><param><value><string>app:a</string></value></param><param><value><boolean>1</boolean></value></param>"),
            "{}",
            seen[0]
        );
        assert!(seen[2].contains("supervisor.startProcess"), "{}", seen[2]);
    }

    fn info(state: &str, start: i64) -> String {
        let member = |name: &str, value: String| {
            format!("<member><name>{name}</name><value>{value}</value></member>")
        };
        format!(
            "<methodResponse><params><param><value><struct>{}{}{}</struct></value></param></params></methodResponse>",
            member("name", "<string>stunnel</string>".into()),
            member("statename", format!("<string>{state}</string>")),
            member("start", format!("<int>{start}</int>")),
        )
    }

    #[tokio::test]
    async fn process_info_says_whether_a_program_is_up_and_since_when() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let answers = vec![
            (200, info("RUNNING", 1_700_000_000)),
            (200, info("STARTING", 1_700_000_001)),
            (200, info("EXITED", 1_700_000_002)),
            (200, TRUE.into()),
        ];
        let server = serve(sock.clone(), answers).await;
        let c = client(sock, None);
        let seen = |up, started_at_s| Seen { up, started_at_s };
        assert_eq!(
            c.process_info("app:stunnel").await,
            Ok(seen(true, 1_700_000_000))
        );
        assert_eq!(c.process_info("a").await, Ok(seen(true, 1_700_000_001)));
        assert_eq!(c.process_info("a").await, Ok(seen(false, 1_700_000_002)));
        assert_eq!(c.process_info("a").await.unwrap_err().kind(), "protocol");
        let requests = server.await.unwrap();
        assert!(
            requests[0].contains("<methodName>supervisor.getProcessInfo</methodName><params><param><value><string>app:stunnel</string>"),
            "{}",
            requests[0]
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_supervisord_down() {
        let dir = tempfile::tempdir().unwrap();
        let c = client(dir.path().join("gone.sock"), None);
        let err = c.act(Action::Stop, "a").await.unwrap_err();
        assert_eq!(err.kind(), "supervisord_down");
        assert!(err.to_string().contains("gone.sock"), "{err}");
        assert!(c.reachable(Duration::from_secs(1)).await.is_err());
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let c = client(PathBuf::from("/s"), Some("me"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("bWU6cHc="), "{shown}");
        assert!(!shown.contains("\"pw\""), "{shown}");
    }
}
