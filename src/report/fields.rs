//! How an [`Event`](crate::report::event::Event)'s fields are rendered, for its `serde`
//! attributes: durations in whole milliseconds (`*_ms`), times as RFC 3339, URLs without
//! credentials, lists comma-separated, and the few fields a variant implies (the `reason` of a
//! failover, the `error_kind` of a refusing tunnel). The same keys in the log line, the journal,
//! `/history` and Datadog.

use std::time::{Duration, SystemTime};

use serde::Serializer;
use serde::ser::SerializeMap;

use crate::report::event::{Place, ms as whole_ms};
use crate::report::journal;

type Done<S> = Result<<S as Serializer>::Ok, <S as Serializer>::Error>;

/// A duration as `*_ms`.
pub fn ms<S: Serializer>(d: &Duration, s: S) -> Done<S> {
    s.serialize_u64(whole_ms(*d))
}

/// An optional duration as `*_ms`.
pub fn maybe_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Done<S> {
    match d {
        Some(d) => ms(d, s),
        None => s.serialize_none(),
    }
}

/// A duration in whole seconds.
pub fn secs<S: Serializer>(d: &Duration, s: S) -> Done<S> {
    s.serialize_u64(d.as_secs())
}

/// A time as RFC 3339 with milliseconds, as the journal's own `timestamp`.
pub fn timestamp<S: Serializer>(t: &SystemTime, s: S) -> Done<S> {
    s.serialize_str(&journal::timestamp(*t))
}

pub fn maybe_timestamp<S: Serializer>(t: &Option<SystemTime>, s: S) -> Done<S> {
    match t {
        Some(t) => timestamp(t, s),
        None => s.serialize_none(),
    }
}

/// A URL without its credentials or query values.
pub fn url<S: Serializer>(u: &str, s: S) -> Done<S> {
    s.serialize_str(&crate::config::redact::url(u))
}

/// A list, comma-separated.
pub fn joined<S: Serializer>(items: &[String], s: S) -> Done<S> {
    s.serialize_str(&items.join(","))
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

/// A local tunnel that refuses, when it is the cause: `tunnel`, `error_kind` `tunnel_down`.
pub fn refusing_tunnel<S: Serializer>(address: &Option<String>, s: S) -> Done<S> {
    let mut m = s.serialize_map(None)?;
    if let Some(address) = address {
        m.serialize_entry("error_kind", "tunnel_down")?;
        m.serialize_entry("tunnel", address)?;
    }
    m.end()
}

/// The local tunnel that refuses: `tunnel`, `error_kind` `tunnel_down`.
pub fn refused_at<S: Serializer>(address: &str, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("error_kind", "tunnel_down")?;
    m.serialize_entry("tunnel", address)?;
    m.end()
}

/// A certificate the probe cannot verify: `error`, `error_kind` `tunnel_misconfigured`.
pub fn misconfigured<S: Serializer>(error: &str, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("error_kind", "tunnel_misconfigured")?;
    m.serialize_entry("error", error)?;
    m.end()
}

/// The handler's version beside the failover order it starts with.
pub fn version_and_order<S: Serializer>(order: &[String], s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("version", env!("CARGO_PKG_VERSION"))?;
    m.serialize_entry("order", &order.join(","))?;
    m.end()
}

/// How an outage ended: `recovered`, or `switched` away from.
pub fn recovered<S: Serializer>(recovered: &bool, s: S) -> Done<S> {
    s.serialize_str(if *recovered { "recovered" } else { "switched" })
}

/// What a fleet host does when its store is lost: `local` rules, or `keep` its region.
pub fn on_store_loss<S: Serializer>(local: &bool, s: S) -> Done<S> {
    s.serialize_str(if *local { "local" } else { "keep" })
}

/// Where a move would go, when it is known: `to_region`, `to_cloud`.
pub fn maybe_to<S: Serializer>(p: &Option<Place>, s: S) -> Done<S> {
    match p {
        Some(p) => to(p, s),
        None => s.serialize_map(Some(0))?.end(),
    }
}
