//! Writes the man page and the bash, zsh and fish completions for the Debian package from the
//! command line's clap definitions, with the same code as `failover-handler man` and
//! `failover-handler completions`, so the packaged files are exactly what the binary prints.
//!
//! They go to `ship/` (`failover-handler.1.gz`, `failover-handler.bash`, `_failover-handler`,
//! `failover-handler.fish`) in the profile's directory (`target/release/ship/` for `cargo deb`,
//! wherever `CARGO_TARGET_DIR` puts the target dir): cargo-deb resolves `target/release/` in
//! its asset paths to that directory, and cannot see cargo's hashed `OUT_DIR`.

use std::path::PathBuf;
use std::{env, fs, io};

use clap::CommandFactory;

#[allow(dead_code)]
#[path = "src/config/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "src/commands/ship.rs"]
mod ship;

fn main() -> io::Result<()> {
    for input in ["build.rs", "src/config/cli.rs", "src/commands/ship.rs"] {
        println!("cargo::rerun-if-changed={input}");
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or(io::ErrorKind::NotFound)?);
    // OUT_DIR is <profile dir>/build/failover-handler-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).ok_or(io::ErrorKind::NotFound)?;
    let dir = profile_dir.join("ship");
    fs::create_dir_all(&dir)?;
    // Debian ships man pages compressed with gzip -9; no timestamp in the header, so the same
    // page gives the same bytes.
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    io::Write::write_all(&mut gz, &ship::man_page(cli::Cli::command())?)?;
    write(&dir, "failover-handler.1.gz", &gz.finish()?)?;
    for (shell, _) in ship::COMPLETIONS {
        let name = clap_complete::Generator::file_name(&shell, "failover-handler");
        write(&dir, &name, &ship::completions(shell, cli::Cli::command()))?;
    }
    Ok(())
}

/// Replaces the file only when its bytes change, so a rebuild leaves an unchanged page alone.
fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    if fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes)
}
