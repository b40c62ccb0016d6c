//! The pin of a manual switch, kept in step between the policy and the pin file in the state
//! directory.

use crate::adapters::files::StateDir;
use crate::adapters::files::pin;
use crate::kernel::policy::Policy;
use crate::kernel::region::{self, Region};
use crate::report::event::{Event, Notice};
use crate::report::observer::Observer;

/// What the daemon last saw in the pin file.
pub struct PinSync {
    regions: Vec<Region>,
    dry_run: bool,
    /// The pin file's content when last read, to notice `switch` and `switch --unpin`.
    pin_seen: Option<String>,
    /// Whether the pin file has been read since the daemon started.
    read_once: bool,
}

impl PinSync {
    pub fn new(regions: Vec<Region>, dry_run: bool) -> Self {
        PinSync {
            regions,
            dry_run,
            pin_seen: None,
            read_once: false,
        }
    }

    /// Keeps the pin and the pin file in step: a change of the file (`switch`, `switch
    /// --unpin`) sets the policy's pin; otherwise what the policy decided (a switch by hand
    /// pins, an outage unpins) is written to the file. Without a state dir, or in a dry run,
    /// nothing is written.
    pub fn sync(&mut self, policy: &mut Policy, state: &StateDir, obs: &mut Observer) {
        let on_disk = pin::read(state);
        if !std::mem::replace(&mut self.read_once, true)
            && let Some(name) = &on_disk
            && let Some(i) = region::find(&self.regions, name)
        {
            self.pin_seen = on_disk.clone();
            self.recall(i, policy, state, obs);
            return;
        }
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
                        obs.emit(Event::Notice(Notice::PinUnknownRegion {
                            region: name.clone(),
                        }));
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
                obs.emit(Event::Notice(Notice::StateWriteFailed {
                    error: e.to_string(),
                    doing: "update the pin in the state directory",
                }));
            }
        }
    }

    /// The pin of region `i` found at start. A pin is always of the active region: one of
    /// another region was left by a handler stopped between an outage's switch and the
    /// pin's removal, and goes now (said once). A true one holds, told again nowhere: it
    /// was said when it was made.
    fn recall(&mut self, i: usize, policy: &mut Policy, state: &StateDir, obs: &mut Observer) {
        let name = self.regions[i].name.clone();
        if i == policy.active() {
            policy.pin(Some(i));
            obs.pin_kept(&name);
            obs.emit(Event::Notice(Notice::PinKept {
                region: name.clone(),
            }));
            return;
        }
        policy.pin(None);
        if self.dry_run || state.path().is_none() {
            return;
        }
        match pin::clear(state) {
            Ok(()) => {
                self.pin_seen = None;
                obs.emit(Event::Unpinned {
                    region: name,
                    reason: "stale",
                });
            }
            Err(e) => {
                obs.emit(Event::Notice(Notice::StateWriteFailed {
                    error: e.to_string(),
                    doing: "update the pin in the state directory",
                }));
            }
        }
    }
}
