//! Small pieces of the merge: which source a value came from, and single values checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::cli::parse_duration;
use crate::config::settings::{ConfigError, Failback};

/// Picks flag > file > default and remembers which one it was, for error messages.
pub(super) fn pick<T>(
    flag: Option<T>,
    flag_name: &'static str,
    file: Option<T>,
    key: &'static str,
    default: T,
) -> (T, &'static str) {
    match (flag, file) {
        (Some(v), _) => (v, flag_name),
        (None, Some(v)) => (v, key),
        (None, None) => (default, "default"),
    }
}

pub(super) fn file_duration(
    value: Option<&String>,
    key: &str,
) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|v| parse_duration(v).map_err(|e| ConfigError::new(key, e)))
        .transpose()
}

pub(super) fn positive(d: Duration, origin: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(origin, "must be greater than zero"));
    }
    Ok(d)
}

/// `never` or `auto`, as `failover.failback` and `--failback` take it.
pub(super) fn failback(text: &str, origin: &str) -> Result<Failback, ConfigError> {
    match text {
        "never" => Ok(Failback::Never),
        "auto" => Ok(Failback::Auto),
        other => Err(ConfigError::new(
            origin,
            format!("'{other}' is not \"never\" or \"auto\""),
        )),
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

pub(super) fn at_least_one(v: u32, key: &str) -> Result<u32, ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(v)
}

/// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`, `:9464` or `9464` (the last three on loopback).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    port.parse::<u16>()
        .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
        .map_err(|_| format!("'{text}' is not an address like 127.0.0.1:9464 or a port"))
}
