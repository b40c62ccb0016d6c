//! What supervisord's socket may answer: the XML-RPC response decoder never panics (nor
//! overflows its stack on deep nesting), and supervisorctl's ini reader never panics on the
//! same bytes.

use failover_handler::adapters::supervisor::parse_ini;
use failover_handler::adapters::supervisor::{Response, decode_response};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match decode_response(&text) {
        Ok(Response::Value(v)) => {
            let _ = v.to_string();
        }
        Ok(Response::Fault { message, .. }) => {
            let _ = message.len();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = parse_ini(&text);
}
