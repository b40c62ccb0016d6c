//! The effective configuration: flags > environment > config file > defaults, merged once into
//! a `Config` whose fields already have their final types. Every error names the flag,
//! variable or key it came from; nothing downstream validates again.

pub mod budget;
pub mod cli;
mod datadog;
mod error;
pub mod file;
pub mod fleet;
mod kernel;
mod merge;
mod probe;
pub mod redact;
mod rule_flags;
mod sections;
pub mod setting;
mod settings;
pub mod show;
pub mod table;
mod time_text;
mod tls;
mod values;

pub use merge::process_env;
pub use settings::*;
pub use time_text::{duration_text, threshold_text, timestamp};
pub use tls::CLOUD as TLS_NAME_CLOUD;
pub use values::parse_listen_addr;
