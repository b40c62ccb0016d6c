//! The process's own resources: how many more file descriptors it may open (`fds`), and its
//! start-up code handed back once the daemon runs (`code_pages`). Each is a few functions,
//! named through its module.

pub mod code_pages;
pub mod fds;
