//! The demo's stage on 127.0.0.1: fake regional clouds (tiny HTTP servers that answer 200, an
//! error status, or nothing at all), a stand-in tunnel (a TCP forwarder to the cloud the env
//! file names, read again whenever it starts) and a restarter that stops and starts it the
//! way supervisorctl restarts the real programs.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::adapters::files::EnvFile;
use crate::adapters::supervisor::{CallError, Restart, RestartError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a fake cloud treats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer with this HTTP status (200 is healthy).
    Answer(u16),
    /// Read the request, then never answer.
    Hang,
}

struct CloudState {
    behaviour: Behaviour,
    /// When it answered 200.
    healthy_answers: Vec<Instant>,
}

/// One region's cloud, served on an ephemeral port of 127.0.0.1.
pub struct FakeCloud {
    pub region: String,
    pub host: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<CloudState>>,
}

impl FakeCloud {
    pub async fn start(region: &str, host: &str, cancel: &CancellationToken) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(CloudState {
            behaviour: Behaviour::Answer(200),
            healthy_answers: Vec::new(),
        }));
        tokio::spawn(serve(listener, Arc::clone(&state), cancel.clone()));
        Ok(FakeCloud {
            region: region.to_string(),
            host: host.to_string(),
            addr,
            state,
        })
    }

    pub fn set(&self, behaviour: Behaviour) {
        lock(&self.state).behaviour = behaviour;
    }

    /// The first 200 it sent at or after `t`.
    pub fn first_healthy_answer_after(&self, t: Instant) -> Option<Instant> {
        lock(&self.state)
            .healthy_answers
            .iter()
            .copied()
            .find(|&at| at >= t)
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<CloudState>>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        if let Ok((stream, _)) = accepted {
            tokio::spawn(answer(stream, Arc::clone(&state), cancel.clone()));
        }
    }
}

async fn answer(mut stream: TcpStream, state: Arc<Mutex<CloudState>>, cancel: CancellationToken) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)) => r,
        };
        match read {
            Ok(Ok(n)) if n > 0 && head.len() < 16 * 1024 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let behaviour = lock(&state).behaviour;
    let code = match behaviour {
        Behaviour::Hang => {
            // Hold the connection until the client gives up.
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
            }
            return;
        }
        Behaviour::Answer(code) => code,
    };
    let (reason, body) = match code {
        200 => ("OK", r#"{"cloudlookup":"ok"}"#),
        503 => ("Service Unavailable", r#"{"error":"unavailable"}"#),
        _ => ("Error", r#"{"error":"failed"}"#),
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() && code == 200 {
        lock(&state).healthy_answers.push(Instant::now());
    }
    let _ = stream.shutdown().await;
}

/// The stand-in tunnel: while started, forwards connections on its address to the cloud the
/// env file named when it started; while stopped, nothing listens (connections are refused).
pub struct Tunnel {
    addr: SocketAddr,
    routes: Vec<(String, SocketAddr)>,
    env_file: EnvFile,
    cancel: CancellationToken,
    running: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl Tunnel {
    /// A stopped tunnel that will listen on `addr`, routing cloud hosts to addresses.
    pub fn at(
        addr: SocketAddr,
        routes: Vec<(String, SocketAddr)>,
        env_file: EnvFile,
        cancel: &CancellationToken,
    ) -> Self {
        Tunnel {
            addr,
            routes,
            env_file,
            cancel: cancel.clone(),
            running: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the env file and forwards to the cloud it names; returns that cloud.
    pub async fn start(&self) -> Result<String, String> {
        self.stop().await;
        let contents = self
            .env_file
            .read()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} is missing", self.env_file.path.display()))?;
        let cloud = contents
            .cloud
            .ok_or_else(|| format!("{} names no cloud", self.env_file.path.display()))?;
        let target = self
            .routes
            .iter()
            .find(|(host, _)| *host == cloud)
            .map(|(_, addr)| *addr)
            .ok_or_else(|| format!("no route to {cloud}"))?;
        let listener =
            listen(self.addr).map_err(|e| format!("cannot listen on {}: {e}", self.addr))?;
        let token = self.cancel.child_token();
        let task = tokio::spawn(forward(listener, target, token.clone()));
        *lock(&self.running) = Some((token, task));
        Ok(cloud)
    }

    /// Stops listening and drops every forwarded connection.
    pub async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some((token, task)) = running {
            token.cancel();
            let _ = task.await;
        }
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

async fn forward(listener: TcpListener, target: SocketAddr, token: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((mut client, _)) = accepted else {
            continue;
        };
        let token = token.clone();
        tokio::spawn(async move {
            // Without an upstream the client's connection is simply closed, as stunnel does.
            let Ok(mut upstream) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            }
        });
    }
}

/// Restarts the demo's programs as supervisorctl would: stops them in order, starts them in
/// reverse. Only the tunnel does anything; each step takes `step`, like a supervisorctl call.
pub struct DemoRestart {
    pub tunnel: Arc<Tunnel>,
    pub programs: Vec<String>,
    pub tunnel_program: String,
    pub step: Duration,
}

impl DemoRestart {
    async fn pause(&self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(self.step) => true,
        }
    }
}

impl Restart for DemoRestart {
    async fn restart(&self, cancel: &CancellationToken) -> Result<Duration, RestartError> {
        let started = Instant::now();
        let mut stopped: Vec<String> = Vec::new();
        for program in &self.programs {
            if !self.pause(cancel).await {
                return Err(RestartError::Cancelled(stopped));
            }
            if *program == self.tunnel_program {
                self.tunnel.stop().await;
            }
            stopped.push(program.clone());
            info!(
                event = "restart_step",
                program = program.as_str(),
                action = "stop",
                "stopped {program}"
            );
        }
        for program in self.programs.iter().rev() {
            if !self.pause(cancel).await {
                return Err(RestartError::Cancelled(stopped));
            }
            if *program == self.tunnel_program {
                let cloud = self
                    .tunnel
                    .start()
                    .await
                    .map_err(|output| RestartError::GaveUp {
                        action: "start",
                        program: program.clone(),
                        attempts: 1,
                        last: CallError::Exit {
                            code: Some(1),
                            signal: None,
                            output,
                        },
                    })?;
                info!(
                    event = "restart_step",
                    program = program.as_str(),
                    action = "start",
                    "started {program}: it read the env file and forwards {} to {cloud}",
                    self.tunnel.addr()
                );
            } else {
                info!(
                    event = "restart_step",
                    program = program.as_str(),
                    action = "start",
                    "started {program}"
                );
            }
            stopped.retain(|p| p != program);
        }
        Ok(started.elapsed())
    }
}
