//! The certificate the tunnel presents, watched for its end: `cert_expiring` is said when the
//! chain runs out within [`CERT_WARNING`], at most once a day.

use std::time::{Duration, SystemTime};

use crate::report::event::{Event, Place};

/// How long before a certificate runs out `cert_expiring` is said.
pub const CERT_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// How often, at most, `cert_expiring` is said again.
const CERT_REPEAT: Duration = Duration::from_secs(24 * 3600);

/// When `cert_expiring` was last said.
#[derive(Debug, Default)]
pub struct CertWatch {
    warned: Option<SystemTime>,
}

impl CertWatch {
    /// The `cert_expiring` event to say for a chain that ends at `not_after` (seconds since
    /// the epoch), seen at `wall`, if it is due.
    pub fn seen(&mut self, at: &Place, not_after: i64, wall: SystemTime) -> Option<Event> {
        let not_after =
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after).unwrap_or(0));
        let left = not_after.duration_since(wall).unwrap_or(Duration::ZERO);
        let said_lately = self
            .warned
            .is_some_and(|t| wall.duration_since(t).unwrap_or(Duration::ZERO) < CERT_REPEAT);
        if left < CERT_WARNING && !said_lately {
            self.warned = Some(wall);
            return Some(Event::CertExpiring {
                at: at.clone(),
                not_after,
                left,
            });
        }
        None
    }
}
