//! The gateway's JSON: keys and values in base64, int64s as strings, and the range end
//! that covers a prefix.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{EtcdError, Kv};

pub(super) fn b64(text: &str) -> String {
    B64.encode(text.as_bytes())
}

pub(super) fn put_body(key: &str, value: &str, lease: i64) -> Value {
    let mut body = json!({ "key": b64(key), "value": b64(value) });
    if lease != 0 {
        body["lease"] = Value::String(lease.to_string());
    }
    body
}

/// The range end that covers every key starting with `prefix`.
pub(super) fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    "\0".to_string()
}

/// An int64 as the gateway writes it: a string, or absent for zero.
pub(super) fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn kv(v: &Value) -> Result<Kv, EtcdError> {
    let text = |field: &str| -> Result<String, EtcdError> {
        let raw = v[field].as_str().unwrap_or_default();
        let bytes = B64
            .decode(raw)
            .map_err(|e| EtcdError::Protocol(format!("{field} is not base64: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    Ok(Kv {
        key: text("key")?,
        value: text("value")?,
        create_revision: int(&v["create_revision"]),
        mod_revision: int(&v["mod_revision"]),
        lease: int(&v["lease"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_at_its_last_byte_plus_one() {
        assert_eq!(
            prefix_end("/failover-handler/pay/"),
            "/failover-handler/pay0"
        );
        assert_eq!(int(&json!("42")), 42);
        assert_eq!(int(&Value::Null), 0);
    }

    #[test]
    fn keys_and_values_travel_in_base64() {
        let v = json!({"key": b64("/a/b"), "value": b64("{\"x\":1}"), "create_revision": "7", "mod_revision": "9", "lease": "123"});
        let kv = kv(&v).unwrap();
        assert_eq!(kv.key, "/a/b");
        assert_eq!(kv.value, "{\"x\":1}");
        assert_eq!((kv.create_revision, kv.mod_revision, kv.lease), (7, 9, 123));
        assert_eq!(
            put_body("k", "v", 0),
            json!({"key": "aw==", "value": "dg=="})
        );
    }
}
