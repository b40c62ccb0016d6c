//! Whether a start took. supervisord answers a start as soon as the process is spawned and
//! RUNNING, or says it was started already (its own `autorestart` retries raced ours): neither
//! is proof. A start is done only when supervisord shows the program RUNNING (past its
//! `startsecs`) in a process started since the restart began; FATAL, EXITED or STOPPED is a
//! failure, and STARTING or BACKOFF is waited for up to `restart.timeout`.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::call_error::CallError;
pub use super::program_state::{ProgramState, Reading, Started};

/// How long between two readings of a program's state.
const POLL: Duration = Duration::from_millis(250);

/// The line of `supervisorctl status PROGRAM` for `program`:
/// `app:x                RUNNING   pid 12, uptime 0:00:03`.
pub fn parse_status(program: &str, output: &str, read_at: SystemTime) -> Option<ProgramState> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != program {
            return None;
        }
        let state = words.next()?.to_string();
        let detail = words.collect::<Vec<_>>().join(" ");
        let started = match uptime(&detail) {
            Some(uptime) => Started::Uptime { uptime, read_at },
            None => Started::Unknown,
        };
        Some(ProgramState {
            state,
            detail,
            started,
        })
    })
}

/// `uptime 0:00:03` or `uptime 2 days, 3:04:05` in supervisorctl's description.
fn uptime(detail: &str) -> Option<Duration> {
    let rest = detail.split("uptime ").nth(1)?.trim();
    let (days, clock) = match rest.split_once(',') {
        Some((days, clock)) => (days.split_whitespace().next()?.parse::<u64>().ok()?, clock),
        None => (0, rest),
    };
    let parts: Vec<u64> = clock
        .trim()
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else {
        return None;
    };
    Some(Duration::from_secs(((days * 24 + h) * 60 + m) * 60 + s))
}

/// After a start call that ended with `call`. A start answered "started" is done: supervisord
/// spawned the process in that call and saw it RUNNING past its `startsecs`. One answered
/// "already started", or failed for the program's own reason, is done once supervisord shows
/// the program RUNNING since `began` (its own retries got it up), read by `state` every
/// [`POLL`] for up to `within`; otherwise the error names the state it is in. A call that
/// failed for a reason not the program's (supervisord down, a timeout) is returned as it is.
pub async fn confirm<F, Fut>(
    call: Result<(), CallError>,
    began: SystemTime,
    within: Duration,
    mut state: F,
) -> Result<(), CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ProgramState, CallError>>,
{
    let after = match call {
        Ok(()) => return Ok(()),
        Err(e) if e.is_programs_own() || e.kind() == "already_started" => Some(Box::new(e)),
        Err(e) => return Err(e),
    };
    let deadline = Instant::now() + within;
    loop {
        let seen = match state().await {
            Ok(seen) => seen,
            Err(e) => return Err(after.map_or(e, |a| *a)),
        };
        let failed = |detail: String| CallError::NotStarted {
            state: seen.state.clone(),
            detail,
            after: after.clone(),
        };
        match seen.reading(began) {
            Reading::Running => return Ok(()),
            Reading::Failed if seen.state == "RUNNING" => {
                return Err(failed("running since before this restart".to_string()));
            }
            Reading::Failed => return Err(failed(seen.detail.clone())),
            Reading::Waiting if Instant::now() >= deadline => {
                return Err(failed(format!(
                    "not RUNNING within {}",
                    crate::config::duration_text(within)
                )));
            }
            Reading::Waiting => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn supervisorctl_status_lines_give_state_detail_and_uptime() {
        let out = "app:x                            RUNNING   pid 12, uptime 0:00:03\n";
        let s = parse_status("app:x", out, at(1000)).unwrap();
        assert_eq!(s.state, "RUNNING");
        assert_eq!(s.detail, "pid 12, uptime 0:00:03");
        assert_eq!(
            s.started,
            Started::Uptime {
                uptime: Duration::from_secs(3),
                read_at: at(1000)
            }
        );
        let out = "crashing    FATAL     Exited too quickly (process log may have details)";
        let s = parse_status("crashing", out, at(1000)).unwrap();
        assert_eq!(
            (s.state.as_str(), s.detail.as_str(), s.started),
            (
                "FATAL",
                "Exited too quickly (process log may have details)",
                Started::Unknown
            )
        );
        assert_eq!(
            uptime("pid 1, uptime 2 days, 3:04:05"),
            Some(Duration::from_secs(2 * 86400 + 3 * 3600 + 4 * 60 + 5))
        );
        assert_eq!(
            parse_status("app:nope", "app:nope: ERROR (no such process)", at(1)),
            None
        );
    }

    #[test]
    fn only_running_since_the_restart_began_is_done() {
        let state = |state: &str, started| ProgramState {
            state: state.into(),
            detail: String::new(),
            started,
        };
        let began = at(1000) + Duration::from_millis(700);
        let up = |uptime, read_at| Started::Uptime {
            uptime: Duration::from_secs(uptime),
            read_at: at(read_at),
        };
        let cases = [
            ("RUNNING", Started::At(1000), Reading::Running),
            ("RUNNING", Started::At(999), Reading::Failed),
            ("RUNNING", up(3, 1003), Reading::Running),
            ("RUNNING", up(5, 1003), Reading::Failed),
            ("RUNNING", Started::Unknown, Reading::Running),
            ("STARTING", Started::At(1001), Reading::Waiting),
            ("BACKOFF", Started::At(1001), Reading::Waiting),
            ("FATAL", Started::At(1001), Reading::Failed),
            ("EXITED", Started::At(1001), Reading::Failed),
            ("STOPPED", Started::At(0), Reading::Failed),
        ];
        for (name, started, want) in cases {
            assert_eq!(
                state(name, started).reading(began),
                want,
                "{name} {started:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_waits_through_backoff_and_names_the_state_it_ends_in() {
        let began = SystemTime::now();
        let now_s = began
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let states = std::sync::Mutex::new(vec!["FATAL", "BACKOFF", "STARTING"]);
        let read = || {
            let state = states.lock().unwrap().pop().unwrap_or("FATAL");
            async move {
                Ok(ProgramState {
                    state: state.into(),
                    detail: "Exited too quickly".into(),
                    started: Started::At(now_s),
                })
            }
        };
        let spawn = CallError::Rpc(crate::adapters::supervisor::rpc::RpcError::Fault {
            code: 50,
            message: "SPAWN_ERROR: c".into(),
        });
        let err = confirm(Err(spawn), began, Duration::from_secs(10), read)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "spawn_error");
        assert_eq!(
            err.to_string(),
            "supervisord answered fault 50: SPAWN_ERROR: c; supervisord shows it FATAL (Exited too quickly)"
        );
        let backoff = || async {
            Ok(ProgramState {
                state: "BACKOFF".into(),
                detail: String::new(),
                started: Started::Unknown,
            })
        };
        let already = CallError::Rpc(crate::adapters::supervisor::rpc::RpcError::Fault {
            code: 60,
            message: "ALREADY_STARTED: c".into(),
        });
        let err = confirm(Err(already), began, Duration::from_secs(2), backoff)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "not_started");
        assert_eq!(
            err.to_string(),
            "supervisord answered fault 60: ALREADY_STARTED: c; supervisord shows it BACKOFF (not RUNNING within 2s)"
        );
        let never = || async { panic!("read after an answer that needs no reading") };
        assert_eq!(
            confirm(Ok(()), began, Duration::from_secs(2), never).await,
            Ok(())
        );
        let down = CallError::Timeout(Duration::from_secs(1));
        assert_eq!(
            confirm(Err(down.clone()), began, Duration::from_secs(2), never).await,
            Err(down)
        );
    }
}
