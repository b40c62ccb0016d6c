//! The event that tells how a restart ended.

use std::time::Duration;

use crate::adapters::supervisor::RestartError;
use crate::report::event::Event;

impl Event {
    /// How a restart for `region` ended, `failed_calls` calls retried on the way.
    pub fn restart_ended(
        region: String,
        result: &Result<Duration, RestartError>,
        failed_calls: u64,
    ) -> Event {
        match result {
            Ok(took) => Event::RestartDone {
                region,
                took: *took,
                failed_calls,
            },
            Err(RestartError::Cancelled(stopped)) => Event::RestartInterrupted {
                region,
                stopped: stopped.clone(),
            },
            Err(RestartError::Lapsed { step, stopped }) => Event::RestartLeaseLost {
                region,
                step: step.clone(),
                stopped: stopped.clone(),
            },
            Err(e) => Event::RestartGaveUp {
                region,
                error: e.to_string(),
            },
        }
    }
}
