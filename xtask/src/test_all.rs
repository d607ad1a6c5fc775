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

use crate::cargo::{self, Artifact, build_executables};

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

/// How many gallery entries are graded at once (each grades its checks 4 at a time).
const GALLERY_THREADS: usize = 4;

/// How long one test binary may run before it counts as hung.
const BINARY_LIMIT: Duration = Duration::from_secs(600);

#[derive(clap::Args, Debug)]
pub struct TestAllArgs {
    /// How many test binaries run at once. Most of their time is spent waiting for
    /// programs under test (a deadline, a stalled peer), not computing, so running them
    /// side by side shortens the run without loading the machine much.
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
    /// At the end, list where the time went: the slowest test binaries, gallery entries
    /// and checks (each check's time is recorded by the tests themselves)
    #[arg(long)]
    timings: bool,
}

/// One test binary's run.
struct Ran {
    success: bool,
    output: String,
    took: Duration,
}

/// Runs `tests` with at most `jobs` at once, longest first (the gallery, which grades
/// every entry, starts at once rather than last). Returns their runs in `tests`' order.
fn run_pool(tests: &[Artifact], jobs: usize, env: &[(String, String)]) -> Vec<Ran> {
    use std::sync::Mutex;
    let mut order: Vec<usize> = (0..tests.len()).collect();
    // The binaries known to take longest go first: they bound the run's length.
    let weight = |a: &Artifact| match (a.target.as_str(), a.kind.as_str()) {
        ("gallery", _) => 0,
        ("conformance", _) | ("hostile", _) => 1,
        _ => 2,
    };
    order.sort_by_key(|&i| weight(&tests[i]));
    let queue = Mutex::new(order.into_iter());
    let results: Mutex<Vec<Option<Ran>>> = Mutex::new((0..tests.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(i) = queue.lock().expect("queue").next() else {
                        return;
                    };
                    let test = &tests[i];
                    let mut command = Command::new(&test.executable);
                    command.current_dir(&test.manifest_dir);
                    if test.target == "gallery" {
                        // Its tests wait on programs far more than they compute: more of
                        // them at once than libtest's one per CPU.
                        command.arg(format!("--test-threads={GALLERY_THREADS}"));
                    }
                    command.envs(env.iter().map(|(k, v)| (k, v)));
                    let started = Instant::now();
                    let ran = match run_merged(command, BINARY_LIMIT) {
                        Ok((success, output)) => Ran {
                            success,
                            output,
                            took: started.elapsed(),
                        },
                        Err(e) => Ran {
                            success: false,
                            output: format!("could not run it: {e:#}"),
                            took: started.elapsed(),
                        },
                    };
                    results.lock().expect("results")[i] = Some(ran);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every test binary ran"))
        .collect()
}

pub fn run(args: TestAllArgs) -> anyhow::Result<ExitCode> {
    let run_started = Instant::now();
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

    // The tests append a line per graded check here; kept after the run for a closer look.
    let timings_file = if args.timings {
        let path = cargo::target_dir()?.join("test-all-timings.tsv");
        std::fs::write(&path, "").with_context(|| format!("create {}", path.display()))?;
        Some(path)
    } else {
        None
    };
    let env: Vec<(String, String)> = timings_file
        .iter()
        .map(|path| {
            (
                "WORKBOOK_TIMINGS".to_string(),
                path.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let tests_started = Instant::now();
    eprintln!(
        "running {} test binaries, {} at a time ...",
        tests.len(),
        args.jobs
    );
    let runs = run_pool(&tests, args.jobs, &env);
    let tests_took = tests_started.elapsed();

    let mut per_package: BTreeMap<String, (Counts, bool)> = BTreeMap::new();
    let mut total = Counts::default();
    let mut all_ok = true;
    for (test, ran) in tests.iter().zip(&runs) {
        let counts = parse_results(&ran.output);
        let ok = ran.success && counts.is_some_and(|c| c.failed == 0);
        if !ok {
            all_ok = false;
            println!(
                "---- {} ({} {}) ----\n{}",
                test.package, test.kind, test.target, ran.output
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

    if let Some(path) = &timings_file {
        let recorded = std::fs::read_to_string(path).unwrap_or_default();
        print!("{}", timings_report(&tests, &runs, &recorded, tests_took));
        println!("(every check's time: {})", path.display());
    }
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
    println!(
        "{} passed, {} failed ({:.0?} in all, {:.0?} running tests)",
        total.passed,
        total.failed,
        run_started.elapsed(),
        tests_took
    );
    Ok(if all_ok && total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where the time went: the slowest test binaries (wall time), then, from the lines the
/// tests recorded (`who<TAB>check<TAB>verdict<TAB>seconds`), the slowest gallery entries
/// and checks.
fn timings_report(tests: &[Artifact], runs: &[Ran], recorded: &str, took: Duration) -> String {
    let mut out =
        format!("\nwhere the time went ({took:.1?} of running tests)\n\nslowest test binaries:\n");
    let mut binaries: Vec<(&Artifact, &Ran)> = tests.iter().zip(runs).collect();
    binaries.sort_by_key(|b| std::cmp::Reverse(b.1.took));
    for (test, ran) in binaries.iter().take(10) {
        out.push_str(&format!(
            "  {:>7.1}s  {} ({} {})\n",
            ran.took.as_secs_f64(),
            test.package,
            test.kind,
            test.target
        ));
    }
    let mut checks: Vec<(f64, String)> = Vec::new();
    let mut entries: BTreeMap<String, f64> = BTreeMap::new();
    for line in recorded.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [who, id, verdict, secs] = fields[..] else {
            continue;
        };
        let Ok(secs) = secs.parse::<f64>() else {
            continue;
        };
        checks.push((secs, format!("{id} {verdict} ({who})")));
        *entries.entry(who.to_string()).or_default() += secs;
    }
    let mut entries: Vec<(f64, String)> = entries.into_iter().map(|(w, s)| (s, w)).collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0));
    checks.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.push_str(&format!(
        "\nslowest of {} graded entries (their checks' time, one after another):\n",
        entries.len()
    ));
    for (secs, who) in entries.iter().take(15) {
        out.push_str(&format!("  {secs:>7.1}s  {who}\n"));
    }
    out.push_str(&format!("\nslowest of {} checks:\n", checks.len()));
    for (secs, what) in checks.iter().take(25) {
        out.push_str(&format!("  {secs:>7.1}s  {what}\n"));
    }
    out
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
