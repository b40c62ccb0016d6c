//! A region as events name it, and how a move's two ends are rendered: `region`, `cloud`
//! where it leaves (with the move's `reason`), `to_region`, `to_cloud` where it goes.

use serde::Serialize;
use serde::Serializer;
use serde::ser::SerializeMap;

use crate::report::fields::Done;

/// A region as events name it: `region` and `cloud`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Place {
    pub region: String,
    pub cloud: String,
}

/// A place by its region's name alone.
pub fn region<S: Serializer>(p: &Place, s: S) -> Done<S> {
    s.serialize_str(&p.region)
}

/// Where a move goes: `to_region`, `to_cloud`.
pub fn to<S: Serializer>(p: &Place, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("to_region", &p.region)?;
    m.serialize_entry("to_cloud", &p.cloud)?;
    m.end()
}

/// Where a move leaves, and why it moves: `region`, `cloud`, `reason`.
fn from<S: Serializer>(p: &Place, reason: &str, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(3))?;
    m.serialize_entry("region", &p.region)?;
    m.serialize_entry("cloud", &p.cloud)?;
    m.serialize_entry("reason", reason)?;
    m.end()
}

/// The region a failover leaves (`reason`: `outage`).
pub fn outage_from<S: Serializer>(p: &Place, s: S) -> Done<S> {
    from(p, "outage", s)
}

/// The region a failback leaves (`reason`: `failback`).
pub fn failback_from<S: Serializer>(p: &Place, s: S) -> Done<S> {
    from(p, "failback", s)
}

/// The region a paused failover stays on (`reason`: `paused`).
pub fn paused_from<S: Serializer>(p: &Place, s: S) -> Done<S> {
    from(p, "paused", s)
}

/// Where a move would go, when it is known: `to_region`, `to_cloud`.
pub fn maybe_to<S: Serializer>(p: &Option<Place>, s: S) -> Done<S> {
    match p {
        Some(p) => to(p, s),
        None => s.serialize_map(Some(0))?.end(),
    }
}
