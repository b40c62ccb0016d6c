//! The daemon's side of the pause: what it last saw in the pause file. The rule (a due switch
//! is held while paused, and said once) is the policy's.

use std::time::SystemTime;

use crate::adapters::files::StateDir;
use crate::adapters::files::pause::{PAUSE_FILE, Pause, PauseState, read};
use crate::daemon::clock;
use crate::kernel::policy::{Input, Policy};
use crate::report::observer::Observer;

/// What the daemon last saw in the pause file.
#[derive(Debug)]
pub struct Gate {
    state: StateDir,
    current: Option<Pause>,
}

impl Gate {
    pub fn new(state: StateDir) -> Self {
        Gate {
            state,
            current: None,
        }
    }

    /// The pause in force, if any.
    pub fn current(&self) -> Option<Pause> {
        self.current
    }

    /// Re-reads the pause file and reports what changed: paused, resumed, or ended by itself
    /// (then the file is removed). Read on the runtime thread, as the env file is: a small
    /// file in the state dir, whose absence is one failed `open`.
    pub fn refresh(&mut self, policy: &mut Policy, obs: &mut Observer) {
        let now = SystemTime::now();
        let read = read(&self.state, now);
        if let PauseState::Ended(_) = read {
            let _ = self.state.remove(PAUSE_FILE);
        }
        let next = match read {
            PauseState::On(p) => Some(p),
            PauseState::Off | PauseState::Ended(_) => None,
        };
        if next == self.current {
            return;
        }
        let ended_by_itself = matches!(read, PauseState::Ended(_))
            || self
                .current
                .is_some_and(|p| p.until.is_some_and(|u| u <= now));
        self.current = next;
        policy.step(clock::now(), Input::Paused(next.is_some()));
        obs.pause_changed(next, ended_by_itself, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::files::pause::{PauseError, pause, resume};
    use crate::adapters::http::{ErrorKind, Probe, ProbeReport};
    use std::time::Duration;

    /// A probe that always fails.
    struct Down;
    impl Probe for Down {
        async fn probe(&self) -> ProbeReport {
            crate::testing::report(Some(ErrorKind::Refused))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_daemon_holds_a_failover_while_paused_and_makes_it_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("ext_cloud.env");
        let state_path = dir.path().join("s");
        let config = std::sync::Arc::new(crate::testing::config(&[
            "--env-file",
            env.to_str().unwrap(),
            "--interval",
            "10s",
            "--threshold",
            "1m",
        ]));
        config.env_file.write(&config.regions[0]).unwrap();
        pause(&state_path, SystemTime::now(), None).unwrap();
        let restarts = crate::testing::CountingRestart::default();
        let obs = Observer::new(&config);
        let published = obs.subscribe();
        let daemon = crate::daemon::Daemon::new(
            config.clone(),
            Down,
            restarts.clone(),
            StateDir::open(&state_path),
        )
        .with_observer(obs);
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(300)).await;
        let region = || config.env_file.read().unwrap().unwrap().region.unwrap();
        assert_eq!(region(), "NAM");
        assert_eq!(restarts.count(), 0);
        let held = |p: &crate::report::observer::Published| {
            p.history
                .iter()
                .filter(|r| r.event == "failover_held")
                .count()
        };
        assert_eq!(held(&published.borrow()), 1, "said once per outage");
        assert!(published.borrow().snapshot.pause.is_some());

        resume(&state_path, SystemTime::now()).unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(region(), "EU");
        assert_eq!(restarts.count(), 1);
        let p = published.borrow().clone();
        assert!(p.snapshot.pause.is_none());
        let last = p.snapshot.last_switch.clone().unwrap();
        assert_eq!((last.from.as_str(), last.to.as_str()), ("NAM", "EU"));
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn without_a_state_dir_pause_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("f");
        std::fs::write(&blocker, b"").unwrap();
        assert!(matches!(
            pause(&blocker.join("s"), SystemTime::now(), None),
            Err(PauseError::NoStateDir(_))
        ));
    }
}
