//! `cargo xtask test-all`: every test of the workspace, counted from libtest's own
//! `test result:` lines.
//!
//! cargo builds the test binaries (`cargo test --no-run`, JSON messages say where they
//! are); then each binary runs from its package's directory, as `cargo test` runs it,
//! and its output is shown only when something in it failed. Doc tests run last
//! through `cargo test --doc`.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cargo::{self, build_executables};

/// Counts from one or more `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
}

/// Sums every `test result: ok. 3 passed; 1 failed; ...` line in `output`. Returns None
/// when there is no such line (the binary crashed before it could report).
pub fn parse_results(output: &str) -> Option<Counts> {
    let mut counts = None::<Counts>;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        let total = counts.get_or_insert_with(Counts::default);
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => total.passed += n,
                "failed" => total.failed += n,
                _ => {}
            }
        }
    }
    counts
}

/// Runs `command` with stdout and stderr in one pipe (so their lines keep their
/// order), within `limit`. Returns the exit success and the output.
fn run_merged(mut command: Command, limit: Duration) -> anyhow::Result<(bool, String)> {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for test output")?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end.try_clone()?))
        .stderr(Stdio::from(write_end));
    let mut child = command.spawn().context("start a test binary")?;
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::fs::File::from(read_end).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = reader.join().unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n(killed after {limit:?})\n"));
    }
    Ok((status.is_some_and(|s| s.success()), output))
}

/// How long one test binary may run before it counts as hung.
const BINARY_LIMIT: Duration = Duration::from_secs(600);

pub fn run() -> anyhow::Result<ExitCode> {
    eprintln!("building the workspace and its tests ...");
    cargo::cargo()
        .args(["build", "--workspace", "--all-targets", "--quiet"])
        .status()
        .context("run cargo build")?
        .success()
        .then_some(())
        .context("cargo build --workspace failed")?;
    let artifacts = build_executables(&["test", "--workspace", "--no-run", "--quiet"])?;
    // Test executables only (cargo also reports the binaries the tests run).
    let mut tests: Vec<_> = artifacts
        .into_iter()
        .filter(|a| a.executable.to_string_lossy().contains("/deps/"))
        .collect();
    tests.sort_by(|a, b| (&a.package, &a.target, &a.kind).cmp(&(&b.package, &b.target, &b.kind)));

    let mut per_package: BTreeMap<String, (Counts, bool)> = BTreeMap::new();
    let mut total = Counts::default();
    let mut all_ok = true;
    for test in &tests {
        let mut command = Command::new(&test.executable);
        command.current_dir(&test.manifest_dir);
        let (success, output) = run_merged(command, BINARY_LIMIT)?;
        let counts = parse_results(&output);
        let ok = success && counts.is_some_and(|c| c.failed == 0);
        if !ok {
            all_ok = false;
            println!(
                "---- {} ({} {}) ----\n{output}",
                test.package, test.kind, test.target
            );
        }
        let mut counts = counts.unwrap_or_default();
        if !ok && counts.failed == 0 {
            // It crashed or hung without reporting a failure: count it as one.
            counts.failed = 1;
        }
        let entry = per_package.entry(test.package.clone()).or_default();
        entry.0.passed += counts.passed;
        entry.0.failed += counts.failed;
        entry.1 |= !ok;
        total.passed += counts.passed;
        total.failed += counts.failed;
    }

    let mut doc = cargo::cargo();
    doc.args(["test", "--workspace", "--doc", "--quiet"]);
    let (doc_ok, doc_output) = run_merged(doc, BINARY_LIMIT)?;
    let doc_counts = parse_results(&doc_output).unwrap_or_default();
    if !doc_ok {
        all_ok = false;
        println!("---- doc tests ----\n{doc_output}");
    }
    total.passed += doc_counts.passed;
    total.failed += doc_counts.failed.max(u64::from(!doc_ok));

    println!();
    for (package, (counts, _)) in &per_package {
        println!(
            "{package:<24} {} passed, {} failed",
            counts.passed, counts.failed
        );
    }
    println!(
        "{:<24} {} passed, {} failed",
        "doc tests", doc_counts.passed, doc_counts.failed
    );
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if all_ok && total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_libtest_result_lines() {
        let out = "running 2 tests\ntest a ... ok\n\ntest result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                   test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n";
        assert_eq!(
            parse_results(out),
            Some(Counts {
                passed: 5,
                failed: 1
            })
        );
        assert_eq!(parse_results("thread 'main' panicked"), None);
    }
}
