//! What happened, told to people and machines: JSON log lines, the observer the daemon
//! reports to, the metrics, the live view, the status page and its endpoints, the decision
//! journal, Datadog, and the status file.

pub mod batch;
pub mod cert;
pub mod datadog;
pub mod event;
pub mod fields;
pub mod intake;
pub mod journal;
pub mod local;
pub mod logging;
pub mod metrics;
pub mod observer;
pub mod page;
pub mod quiet;
mod quiet_window;
pub mod services;
pub mod snapshot;
pub mod spool;
pub mod status;
pub mod told;
pub mod view;
pub mod web;
mod wording;
