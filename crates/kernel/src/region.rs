//! Regions and the failover order: parsing `EXT_CLOUD_FAILOVER_LIST`, validating the names and
//! hosts that end up in the sourced env file, and putting the preferred region first.

use std::fmt;

use thiserror::Error;

/// The list the old script used when `EXT_CLOUD_FAILOVER_LIST` was unset.
pub const DEFAULT_FAILOVER_LIST: &str =
    "NAM=cloud.nam.ext.com,EU=cloud.eu.ext.com,APAC=cloud.apac.ext.com";

/// Where a standby region can be checked: an HTTP(S) URL (200 is healthy) or a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Http(url::Url),
    Tcp { host: String, port: u16 },
}

impl Target {
    /// Parses `http://…`, `https://…` or `tcp://host:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("'{text}' is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => {
                if url.host_str().is_none() {
                    return Err(format!("'{text}' has no host"));
                }
                Ok(Target::Http(url))
            }
            "tcp" => {
                let host = url
                    .host_str()
                    .ok_or_else(|| format!("'{text}' has no host"))?
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let port = url
                    .port()
                    .ok_or_else(|| format!("'{text}' has no port (tcp://host:port)"))?;
                Ok(Target::Tcp { host, port })
            }
            other => Err(format!(
                "'{text}' has scheme '{other}'; expected http://, https:// or tcp://"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http(url) => write!(f, "{url}"),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// One region of the external cloud. Its name and cloud host are checked against
/// `[A-Za-z0-9._:-]` on construction, so they are safe to write into a file that shell sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub cloud: String,
    pub health_url: Option<Target>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegionError {
    #[error("the list is empty")]
    Empty,
    #[error("'{0}' is not a NAME=cloud-host pair")]
    NotAPair(String),
    #[error("region name '{0}' must be 1 to 64 characters of [A-Za-z0-9._:-]")]
    BadName(String),
    #[error("cloud host '{0}' must be 1 to 253 characters of [A-Za-z0-9._:-]")]
    BadCloud(String),
    #[error("region '{0}' appears more than once")]
    Duplicate(String),
}

/// True when `text` is non-empty, at most `max` long, and only `[A-Za-z0-9._:-]`: nothing a
/// shell would expand, split or execute.
pub fn is_safe_token(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl Region {
    pub fn new(name: &str, cloud: &str) -> Result<Self, RegionError> {
        if !is_safe_token(name, 64) {
            return Err(RegionError::BadName(name.to_string()));
        }
        if !is_safe_token(cloud, 253) {
            return Err(RegionError::BadCloud(cloud.to_string()));
        }
        Ok(Region {
            name: name.to_string(),
            cloud: cloud.to_string(),
            health_url: None,
        })
    }
}

/// Parses `NAME=cloud-host` pairs separated by commas (spaces around items are ignored).
pub fn parse_failover_list(text: &str) -> Result<Vec<Region>, RegionError> {
    let mut regions: Vec<Region> = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            if text.trim().is_empty() {
                return Err(RegionError::Empty);
            }
            return Err(RegionError::NotAPair(String::new()));
        }
        let (name, cloud) = item
            .split_once('=')
            .ok_or_else(|| RegionError::NotAPair(item.to_string()))?;
        let region = Region::new(name.trim(), cloud.trim())?;
        push_unique(&mut regions, region)?;
    }
    Ok(regions)
}

/// Appends `region` unless a region of the same name (case-insensitive) is there already.
pub fn push_unique(regions: &mut Vec<Region>, region: Region) -> Result<(), RegionError> {
    if regions
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(&region.name))
    {
        return Err(RegionError::Duplicate(region.name));
    }
    regions.push(region);
    Ok(())
}

/// Finds a region by name, ignoring case, so that `--region eu` works as `--region EU`.
pub fn find(regions: &[Region], name: &str) -> Option<usize> {
    regions
        .iter()
        .position(|r| r.name.eq_ignore_ascii_case(name))
}

/// The failover order: the preferred region first, then the others in list order.
pub fn ordered(mut regions: Vec<Region>, preferred: Option<usize>) -> Vec<Region> {
    if let Some(i) = preferred {
        let first = regions.remove(i);
        regions.insert(0, first);
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(regions: &[Region]) -> Vec<&str> {
        regions.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn parses_the_default_list() {
        let regions = parse_failover_list(DEFAULT_FAILOVER_LIST).unwrap();
        assert_eq!(names(&regions), ["NAM", "EU", "APAC"]);
        assert_eq!(regions[1].cloud, "cloud.eu.ext.com");
    }

    #[test]
    fn rejects_bad_lists() {
        let cases = [
            ("", RegionError::Empty),
            ("  ", RegionError::Empty),
            ("NAM", RegionError::NotAPair("NAM".into())),
            ("NAM=a,,EU=b", RegionError::NotAPair(String::new())),
            ("NAM=a,NAM=b", RegionError::Duplicate("NAM".into())),
            ("NAM=a,nam=b", RegionError::Duplicate("nam".into())),
            ("NAM=a;reboot", RegionError::BadCloud("a;reboot".into())),
            ("NAM=$(id)", RegionError::BadCloud("$(id)".into())),
            ("EU=a b", RegionError::BadCloud("a b".into())),
            ("E`U`=a", RegionError::BadName("E`U`".into())),
            ("=a", RegionError::BadName(String::new())),
            ("NAM=", RegionError::BadCloud(String::new())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_failover_list(input), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn preferred_region_goes_first_then_list_order() {
        let list = parse_failover_list(DEFAULT_FAILOVER_LIST).unwrap();
        for (pref, want) in [
            ("EU", ["EU", "NAM", "APAC"]),
            ("APAC", ["APAC", "NAM", "EU"]),
            ("nam", ["NAM", "EU", "APAC"]),
        ] {
            let i = find(&list, pref);
            assert_eq!(names(&ordered(list.clone(), i)), want, "preferred {pref}");
        }
    }

    #[test]
    fn targets() {
        assert!(matches!(
            Target::parse("tcp://127.0.0.1:53"),
            Ok(Target::Tcp { port: 53, .. })
        ));
        assert!(matches!(
            Target::parse("https://a.example/health"),
            Ok(Target::Http(_))
        ));
        assert!(Target::parse("tcp://host").is_err());
        assert!(Target::parse("ftp://host/x").is_err());
        assert!(Target::parse("nonsense").is_err());
        assert_eq!(
            Target::parse("tcp://[::1]:80").unwrap().to_string(),
            "tcp://[::1]:80"
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_accepts_only_safe_values(input in ".{0,200}") {
            if let Ok(regions) = parse_failover_list(&input) {
                prop_assert!(!regions.is_empty());
                for r in regions {
                    prop_assert!(is_safe_token(&r.name, 64));
                    prop_assert!(is_safe_token(&r.cloud, 253));
                }
            }
        }

        #[test]
        fn well_formed_lists_round_trip(pairs in proptest::collection::vec(("[A-Z]{1,6}", "[a-z0-9.-]{1,20}"), 1..6)) {
            let mut seen = std::collections::HashSet::new();
            let pairs: Vec<_> = pairs.into_iter().filter(|(n, _)| seen.insert(n.clone())).collect();
            let text = pairs.iter().map(|(n, c)| format!("{n}={c}")).collect::<Vec<_>>().join(",");
            let regions = parse_failover_list(&text).unwrap();
            prop_assert_eq!(regions.len(), pairs.len());
            for (r, (n, c)) in regions.iter().zip(&pairs) {
                prop_assert_eq!(&r.name, n);
                prop_assert_eq!(&r.cloud, c);
            }
        }
    }
}
