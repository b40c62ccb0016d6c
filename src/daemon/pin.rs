//! The pin of a manual switch, kept in step between the policy and the pin file in the state
//! directory.

use tracing::warn;

use crate::adapters::pin;
use crate::adapters::state::StateDir;
use crate::kernel::policy::Policy;
use crate::kernel::region::{self, Region};
use crate::report::event::Event;
use crate::report::observer::Observer;

/// What the daemon last saw in the pin file.
pub struct PinSync {
    regions: Vec<Region>,
    dry_run: bool,
    /// The pin file's content when last read, to notice `switch` and `switch --unpin`.
    pin_seen: Option<String>,
}

impl PinSync {
    pub fn new(regions: Vec<Region>, dry_run: bool) -> Self {
        PinSync {
            regions,
            dry_run,
            pin_seen: None,
        }
    }

    /// Keeps the pin and the pin file in step: a change of the file (`switch`, `switch
    /// --unpin`) sets the policy's pin; otherwise what the policy decided (a switch by hand
    /// pins, an outage unpins) is written to the file. Without a state dir, or in a dry run,
    /// nothing is written.
    pub fn sync(&mut self, policy: &mut Policy, state: &StateDir, obs: &mut Observer) {
        let on_disk = pin::read(state);
        if on_disk != self.pin_seen {
            match &on_disk {
                Some(name) => match region::find(&self.regions, name) {
                    Some(i) => {
                        policy.pin(Some(i));
                        obs.emit(Event::Pinned {
                            region: self.regions[i].name.clone(),
                            source: "state_dir",
                        });
                    }
                    None => {
                        policy.pin(None);
                        warn!(event = "pin_unknown_region", region = %name, "The pin names region {name}, which is not in the failover list: ignored");
                    }
                },
                None => {
                    policy.pin(None);
                    obs.emit(Event::Unpinned {
                        region: self.pin_seen.clone().unwrap_or_default(),
                        reason: "unpin",
                    });
                }
            }
            self.pin_seen = on_disk;
            return;
        }
        if self.dry_run || state.path().is_none() {
            return;
        }
        let wanted = policy.pinned().map(|i| self.regions[i].name.clone());
        if wanted == on_disk {
            return;
        }
        let written = match &wanted {
            Some(name) => pin::write(state, name).map(|()| {
                obs.emit(Event::Pinned {
                    region: name.clone(),
                    source: "env_file",
                })
            }),
            None => pin::clear(state).map(|()| {
                obs.emit(Event::Unpinned {
                    region: on_disk.clone().unwrap_or_default(),
                    reason: "outage",
                })
            }),
        };
        match written {
            Ok(()) => self.pin_seen = wanted,
            Err(e) => {
                warn!(event = "state_write_failed", error = %e, "Cannot update the pin in the state directory: {e}");
            }
        }
    }
}
