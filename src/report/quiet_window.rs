//! What the daemon tells its observer of the failures it expects: a restart of its own, a
//! switch by hand restarting the programs; and whether a failure now is one of them.

use tokio::time::Instant;

use crate::report::observer::Observer;

impl Observer {
    /// Whether a probe failure now is expected: told at INFO, not WARN.
    pub fn quiet(&self) -> bool {
        self.quiet.is_quiet(Instant::now())
    }

    /// The handler begins restarting the programs: quiet until [`Observer::restarted`].
    pub fn restarting(&mut self) {
        self.quiet.restart_began();
    }

    /// Whether a switch by hand is restarting the programs: quiet while it is.
    pub fn switch_restarting(&mut self, under_way: bool) {
        self.quiet.switch_restarting(under_way);
    }
}
