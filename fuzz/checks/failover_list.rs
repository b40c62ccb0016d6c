//! `EXT_CLOUD_FAILOVER_LIST` as anyone may set it: the parser never panics, and whatever it
//! accepts is a non-empty list of unique, shell-safe names and hosts.

use failover_handler::kernel::region::{is_safe_token, parse_failover_list};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(regions) = parse_failover_list(text) {
        assert!(!regions.is_empty());
        for (i, r) in regions.iter().enumerate() {
            assert!(is_safe_token(&r.name, 64), "{:?}", r.name);
            assert!(is_safe_token(&r.cloud, 253), "{:?}", r.cloud);
            assert!(
                regions[..i]
                    .iter()
                    .all(|o| !o.name.eq_ignore_ascii_case(&r.name))
            );
        }
    }
}
