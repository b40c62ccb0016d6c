//! The TOML config file as a user may write it: parsing and the whole validation never
//! panic, and an accepted config holds only shell-safe regions and sane timings.

use clap::Parser;
use failover_handler::config::Config;
use failover_handler::config::cli::Cli;
use failover_handler::config::file::FileConfig;
use failover_handler::kernel::region::is_safe_token;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = FileConfig::parse(text) else {
        return;
    };
    let Ok(cli) = Cli::try_parse_from(["failover-handler"]) else {
        return;
    };
    let env = |name: &str| match name {
        "CONNECTION_KEEPALIVE_ORG_ID" | "CONNECTION_KEEPALIVE_TXN_ID" => Some("x".to_string()),
        _ => None,
    };
    if let Ok(config) = Config::from_file(&cli.options, file, &env) {
        assert!(!config.regions.is_empty());
        for r in &config.regions {
            assert!(is_safe_token(&r.name, 64) && is_safe_token(&r.cloud, 253));
        }
        assert!(!config.probe.interval.is_zero());
        assert!(config.failover.threshold >= config.probe.interval);
        assert!(config.probe.timeout <= config.failover.threshold);
    }
}
