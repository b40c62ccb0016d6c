//! The README's benchmark figures are made from the latest measured output recorded in
//! docs/benchmark.md, so the two cannot drift: this test builds the README's table from that
//! output and finds it, byte for byte, in the README (on a mismatch it prints the table to
//! paste).

use std::fs;
use std::path::Path;

fn read(name: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The recorded output: docs/benchmark.md from `## Results` on.
fn results(bench: &str) -> &str {
    bench
        .split("\n## Results\n")
        .nth(1)
        .expect("docs/benchmark.md has a Results section")
}

/// The text of `### {heading}` up to the next heading.
fn section<'a>(results: &'a str, heading: &str) -> &'a str {
    let start = results
        .find(&format!("### {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let rest = &results[start + heading.len() + 5..];
    rest.find("\n#").map_or(rest, |end| &rest[..end])
}

/// The cells of the table row of `section` whose first cell is `first` (the `n`th such row).
fn row(section: &str, first: &str, n: usize) -> Vec<String> {
    find_row(section, first, n).unwrap_or_else(|| panic!("no row {first:?} in\n{section}"))
}

fn find_row(section: &str, first: &str, n: usize) -> Option<Vec<String>> {
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect::<Vec<String>>()
        })
        .filter(|cells| cells[0] == first)
        .nth(n)
}

/// The date a section was run: its own `Run of DATE.`, else the recorded output's
/// `Run on DATE`.
fn run_date(results: &str, section: &str) -> String {
    let date = |text: &str, marker: &str| {
        text.find(marker)
            .map(|i| text[i + marker.len()..i + marker.len() + 10].to_owned())
    };
    date(section, "Run of ")
        .or_else(|| date(results, "Run on "))
        .expect("a run date")
}

/// The README's benchmark paragraph and table, from the recorded output.
fn readme_table(bench: &str) -> String {
    let results = results(bench);
    let machine = results
        .lines()
        .find_map(|l| l.strip_prefix("Machine: "))
        .and_then(|l| l.split(". Build:").next())
        .expect("the Machine line");
    let failover = section(results, "Failover overhead");
    let restart = section(results, "Restart sequence on a real supervisord");
    let resources = section(results, "The daemon's resources");
    let bytes = section(results, "Bytes on the wire per probe");
    let (d_failover, d_restart, d_resources, d_bytes) = (
        run_date(results, failover),
        run_date(results, restart),
        run_date(results, resources),
        run_date(results, bytes),
    );
    let overhead = |name: &str| {
        let r = row(failover, name, 0);
        format!("{} median, {} max", r[4], r[5])
    };
    // The bench names the row so since a refusing local tunnel is restarted in place first.
    let refused = find_row(
        failover,
        "refused (local tunnel: restart in place, then switch)",
        0,
    );
    let restart_row = |via: &str, startsecs: &str| {
        let rows: Vec<Vec<String>> = (0..2).map(|n| row(restart, via, n)).collect();
        rows.into_iter()
            .find(|r| r[1] == startsecs)
            .unwrap_or_else(|| panic!("no {via} row with startsecs {startsecs}"))
    };
    let xml1 = restart_row("XML-RPC", "1 (default)");
    let xml0 = restart_row("XML-RPC", "0");
    let ctl0 = restart_row("supervisorctl", "0");
    let floor0 = row(restart, "0", 0);
    let rss10 = row(resources, "RSS after 10 probes (VmRSS)", 0);
    let rss1000 = row(resources, "RSS after 1000 more probes (VmRSS)", 0);
    let cpu = resources
        .lines()
        .find(|l| l.starts_with("| CPU time per probe"))
        .and_then(|l| l.trim_end_matches(" |").rsplit(" | ").next())
        .expect("the CPU time per probe row");
    let sent = row(bytes, "sent", 0);
    let received = row(bytes, "received", 0);
    format!(
        "Machine: {machine}; a virtual machine shared with other builds and tests, whose load \
the maxima carry. The figures are the latest recorded in [docs/benchmark.md](docs/benchmark.md), \
with the method and the full output; a test checks that this table matches them.\n\
\n\
| figure | measured | run of |\n\
|---|---|---|\n\
| failover time beyond threshold + interval (the overhead the tool adds), HTTP 503 | {} | {d_failover} |\n\
| the same, reset connection | {} | {d_failover} |\n\
| the same, a hang | {} (one probe timeout of 150 ms, by design) | {d_failover} |\n\
| the same, the local tunnel refusing: restarted in place after one threshold, switched after a second (by design) | {} | {d_failover} |\n\
| restart sequence on a real supervisord, 3 programs, default `startsecs=1`, through XML-RPC | {} median, {} max (3 × 1 s is supervisord's `startsecs`) | {d_restart} |\n\
| the same with `startsecs=0` (the six calls themselves), through XML-RPC | {} median, {} max (a whole `switch`: {} median); a minimal client's floor: {} median | {d_restart} |\n\
| the same with `startsecs=0` through supervisorctl | {} median, {} max (a whole `switch`: {} median) | {d_restart} |\n\
| processes spawned per `switch` | {} through XML-RPC; {} through supervisorctl | {d_restart} |\n\
| daemon RSS after 10 probes, and after 1,000 more | {}, {} | {d_resources} |\n\
| CPU time per probe (a fresh TCP + TLS 1.3 connection each) | {cpu} | {d_resources} |\n\
| bytes on the wire per probe (TLS records, ECDSA P-256 certificate) | {} sent, {} received | {d_bytes} |\n",
        overhead("HTTP 503"),
        overhead("reset"),
        overhead("hang (probe times out)"),
        match refused {
            Some(r) => format!("{} median, {} max", r[4], r[5]),
            None => "not measured since (the recorded run predates it)".to_owned(),
        },
        xml1[2],
        xml1[3],
        xml0[2],
        xml0[3],
        xml0[4],
        floor0[1],
        ctl0[2],
        ctl0[3],
        ctl0[4],
        xml0[6],
        ctl0[6],
        rss10[1],
        rss1000[1],
        sent[1],
        received[1],
    )
}

#[test]
fn the_readme_benchmark_table_is_the_latest_recorded_output() {
    let expected = readme_table(&read("docs/benchmark.md"));
    let readme = read("README.md");
    assert!(
        readme.contains(&expected),
        "README.md's benchmark figures differ from docs/benchmark.md's; the README should read:\n\n{expected}"
    );
}
