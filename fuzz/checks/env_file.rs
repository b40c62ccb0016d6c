//! The env file as it may be found on disk: the reader never panics, returns only shell-safe
//! values, and reads back exactly what the writer renders for them.

use std::path::PathBuf;

use failover_handler::adapters::files::EnvFile;
use failover_handler::kernel::region::{Region, is_safe_token};

pub fn check(data: &[u8]) {
    let file = EnvFile {
        path: PathBuf::from("unused"),
        cloud_var: "EXT_CLOUD".into(),
        region_var: "EXT_REGION".into(),
    };
    let parsed = file.parse(&String::from_utf8_lossy(data));
    for v in [&parsed.region, &parsed.cloud].into_iter().flatten() {
        assert!(is_safe_token(v, 253), "{v:?}");
    }
    if let (Some(name), Some(cloud)) = (&parsed.region, &parsed.cloud)
        && let Ok(region) = Region::new(name, cloud)
    {
        let again = file.parse(&file.render(&region));
        assert_eq!(again, parsed);
    }
}
