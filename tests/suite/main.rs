//! The integration tests as one binary: each module is a theme, and `support` (temp dirs, the
//! binary under test, the fake tunnel, the real stack) is compiled once for all of them.
//! Run one theme with `cargo test --test suite cli::`.

/// Tests that differ only by values, as a table: the function that runs a case, then one row a
/// test, its name and the function's arguments.
macro_rules! cases {
    ($run:ident; $($name:ident: ($($arg:expr),+ $(,)?);)+) => {
        $(
            #[test]
            fn $name() {
                $run($($arg),+);
            }
        )+
    };
}

mod support;

mod at_rest;
mod benchmark_docs;
mod cli;
mod completion;
mod daemon;
mod demo;
mod discovery;
mod docs_examples;
mod e2e_running;
mod e2e_supervisord;
mod e2e_tunnel;
mod e2e_tunnel_tls;
mod edges;
mod examples;
mod faults;
mod fleet;
mod fleet_chaos;
mod fleet_rest;
mod fuzz_corpus;
mod grace;
mod handler_restart;
mod harness;
mod hostile;
mod local_attacker;
mod observability;
mod observe;
mod package;
mod regions;
mod reload;
mod replay;
mod security;
mod tunnels;
mod vocabulary;
