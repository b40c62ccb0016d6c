//! The acts that make a region active, the same for the daemon and for `switch`: the env
//! file written, the region pinned (a switch by hand), and the programs restarted under a
//! marker in the state directory that says a restart is under way.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::adapters::files::switch_mark::Mark;
use crate::adapters::files::{EnvFileError, EnvLock, StateDir};
use crate::adapters::supervisor::{Restart, RestartError};
use crate::config::EnvFile;
use crate::kernel::region::Region;
use crate::report::event::{Command, Event};
use crate::report::{logging, told};

/// Which marker a restart runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The daemon's: a restart it did not finish is made at its next start.
    Pending,
    /// A switch by hand's: while it is there, a running daemon takes the tunnel's refusals
    /// for the switch's own doing.
    Switch,
}

/// The env file, the state directory and supervisorctl, as one region is made active.
pub struct Actuator<R> {
    env_file: EnvFile,
    state: StateDir,
    restarter: R,
}

impl<R: Restart> Actuator<R> {
    pub fn new(env_file: EnvFile, state: StateDir, restarter: R) -> Self {
        Actuator {
            env_file,
            state,
            restarter,
        }
    }

    pub fn restarter(&self) -> &R {
        &self.restarter
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// Writes the env file for `region` on the blocking pool: a write begun runs to its end,
    /// even when the daemon is stopping.
    pub async fn write(&self, region: &Region) -> Result<(), EnvFileError> {
        let env_file = self.env_file.clone();
        let region = region.clone();
        tokio::task::spawn_blocking(move || env_file.write(&region))
            .await
            .unwrap_or_else(|e| {
                Err(EnvFileError::Write {
                    path: self.env_file.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// Writes `region` with the env file's lock held, as a switch by hand does.
    pub fn write_locked(&self, lock: &EnvLock<'_>, region: &Region) -> Result<(), EnvFileError> {
        lock.write(region)
    }

    /// Pins `name`, so that no automatic failback moves away from it.
    pub fn pin(&self, name: &str) -> std::io::Result<()> {
        crate::adapters::files::pin::write(&self.state, name)
    }

    /// Restarts the programs on `region` under `marker`; `may_act`, when given, is asked
    /// before each program (a fleet's lease). A marker that cannot be written is told, and
    /// the restart goes on all the same.
    pub async fn restart(
        &self,
        region: &str,
        marker: Marker,
        cancel: &CancellationToken,
        may_act: Option<&(dyn Fn() -> bool + Sync)>,
    ) -> Result<Duration, RestartError> {
        let mark = match marker {
            Marker::Pending => {
                told::state_write(self.state.mark_restart_pending(region).err());
                None
            }
            Marker::Switch => self.mark_switch(region),
        };
        let result = match may_act {
            Some(may_act) => self.restarter.restart_while(cancel, may_act).await,
            None => self.restarter.restart(cancel).await,
        };
        drop(mark);
        if marker == Marker::Pending && result.is_ok() {
            told::state_write(self.state.clear_restart_pending().err());
        }
        result
    }

    /// Marks the state dir while a switch restarts the programs for `region`; without it a
    /// running daemon tells the tunnel's restart as an outage.
    fn mark_switch(&self, region: &str) -> Option<Mark> {
        // An unusable state dir was said when it was opened.
        let dir = self.state.path()?;
        match Mark::begin(&self.state, region) {
            Ok(mark) => Some(mark),
            Err(e) => {
                logging::event(&Event::Command(Command::SwitchMarkFailed {
                    region: region.to_string(),
                    error: e.to_string(),
                    dir: dir.display().to_string(),
                }));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::adapters::files::switch_mark::{self, SwitchMarkState};

    /// The markers a restart saw: the region pending, and whether a switch's mark was held.
    type Markers = (Option<String>, bool);

    /// A restart that records the markers it saw while it ran, and succeeds or is cut short.
    struct Watching {
        state: StateDir,
        ok: bool,
        saw: Arc<Mutex<Vec<Markers>>>,
    }

    impl Restart for Watching {
        async fn restart(&self, _: &CancellationToken) -> Result<Duration, RestartError> {
            let switching = matches!(switch_mark::read(&self.state), SwitchMarkState::Running(_));
            let seen = (self.state.restart_pending(), switching);
            self.saw.lock().unwrap().push(seen);
            if self.ok {
                Ok(Duration::from_millis(1))
            } else {
                Err(RestartError::Cancelled(vec!["app".into()]))
            }
        }
    }

    #[tokio::test]
    async fn each_marker_is_there_while_the_programs_restart_and_gone_when_it_should_be() {
        // (marker, the restart succeeds) -> (pending, switching) seen during the restart,
        // and the pending marker left after it
        let eu = Some("EU".to_string());
        let cases = [
            ((Marker::Pending, true), ((eu.clone(), false), None)),
            // cut short: the next start finishes it
            ((Marker::Pending, false), ((eu.clone(), false), eu.clone())),
            ((Marker::Switch, true), ((None, true), None)),
            ((Marker::Switch, false), ((None, true), None)),
        ];
        for ((marker, ok), (during, after)) in cases {
            let dir = tempfile::tempdir().unwrap();
            let state = StateDir::open(&dir.path().join("state"));
            let saw = Arc::new(Mutex::new(Vec::new()));
            let restarter = Watching {
                state: state.clone(),
                ok,
                saw: saw.clone(),
            };
            let config = crate::testing::config(&["--env-file", "/nonexistent/ext_cloud.env"]);
            let actuator = Actuator::new(config.env_file.clone(), state.clone(), restarter);
            let result = (actuator.restart("EU", marker, &CancellationToken::new(), None)).await;
            assert_eq!(result.is_ok(), ok, "{marker:?}");
            assert_eq!(*saw.lock().unwrap(), [during], "{marker:?} {ok}");
            assert_eq!(state.restart_pending(), after, "{marker:?} {ok}");
            assert_eq!(
                switch_mark::read(&state),
                SwitchMarkState::None,
                "{marker:?} {ok}"
            );
        }
    }
}
