//! Datadog entries and the requests that carry them: what one entry holds (the journal record
//! plus Datadog's source, service, host name, tags and standard attributes), how entries are
//! grouped within the intake's limits, and the gzip body of a request.

use std::collections::VecDeque;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::report::journal::Record;

/// Entries per request, as the intake allows.
pub const MAX_ENTRIES: usize = 1000;
/// Uncompressed bytes per request, as the intake allows.
pub const MAX_PAYLOAD: usize = 5 * 1024 * 1024;
/// One entry's largest size; the intake would cut a larger one.
pub const MAX_ENTRY: usize = 1024 * 1024;

/// One log entry for the intake: the record's fields, plus Datadog's source, service,
/// host name and tags. `level` feeds Datadog's status remapper.
pub fn entry(record: &Record, service: &str, hostname: &str) -> Value {
    let mut v = record.to_value();
    if let Value::Object(map) = &mut v {
        let pairs: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        map.extend(crate::report::logging::standard_attributes(&pairs));
        map.insert("ddsource".into(), "failover-handler".into());
        map.insert("service".into(), service.into());
        map.insert("hostname".into(), hostname.into());
        map.insert(
            "ddtags".into(),
            format!(
                "source:failover-handler,version:{},event:{}",
                env!("CARGO_PKG_VERSION"),
                record.event
            )
            .into(),
        );
    }
    v
}

/// This machine's host name, for the entries.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Takes the next batch off the front of `queue`: at most `max_entries` entries whose JSON
/// array stays within `max_bytes`.
pub fn take_batch(
    queue: &mut VecDeque<String>,
    max_entries: usize,
    max_bytes: usize,
) -> Vec<String> {
    let mut batch = Vec::new();
    let mut size = 2;
    while let Some(front) = queue.front() {
        let add = front.len() + usize::from(!batch.is_empty());
        if batch.len() == max_entries || (size + add > max_bytes && !batch.is_empty()) {
            break;
        }
        size += add;
        if let Some(e) = queue.pop_front() {
            batch.push(e);
        }
    }
    batch
}

/// The request body: the batch as a JSON array, gzipped.
pub fn gzip_payload(batch: &[String]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(b"[")?;
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        gz.write_all(e.as_bytes())?;
    }
    gz.write_all(b"]")?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn batches_stop_at_the_entry_and_byte_limits() {
        let mut q: VecDeque<String> = (0..2500).map(|i| format!("{{\"n\":{i}}}")).collect();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = take_batch(&mut q, MAX_ENTRIES, MAX_PAYLOAD);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, [1000, 1000, 500]);

        let big = "x".repeat(400_000);
        let mut q: VecDeque<String> = (0..30).map(|_| format!("\"{big}\"")).collect();
        let b = take_batch(&mut q, MAX_ENTRIES, MAX_PAYLOAD);
        let bytes = 2 + b.iter().map(|e| e.len() + 1).sum::<usize>() - 1;
        assert!(bytes <= MAX_PAYLOAD, "{bytes}");
        assert_eq!(b.len(), 13);
    }

    #[test]
    fn payload_is_a_gzipped_json_array() {
        let batch = vec!["{\"a\":1}".to_string(), "{\"b\":2}".to_string()];
        let gz = gzip_payload(&batch).unwrap();
        let mut text = String::new();
        GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "[{\"a\":1},{\"b\":2}]");
    }

    #[test]
    fn entries_carry_source_service_host_and_the_record() {
        let r = Record::new(
            std::time::UNIX_EPOCH,
            crate::report::journal::Level::Warn,
            "switch",
            "moved",
        )
        .with("from", "NAM");
        let e = entry(&r, "svc", "h1");
        assert_eq!(e["ddsource"], "failover-handler");
        assert_eq!(e["service"], "svc");
        assert_eq!(e["hostname"], "h1");
        assert_eq!(e["level"], "WARN");
        assert_eq!(e["from"], "NAM");
        assert_eq!(e["message"], "moved");
        assert!(e["ddtags"].as_str().unwrap().contains("event:switch"));
    }
}
