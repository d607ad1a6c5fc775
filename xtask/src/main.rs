//! # xtask: the workbook's commands
//!
//! `cargo xtask <verb>` (an alias in `.cargo/config.toml`):
//!
//! * `test-all`: builds everything, runs every test binary, prints one line per test
//!   binary and `N passed, M failed` counted from libtest's own `test result:` lines;
//! * `list`: chapters, roles and their placeholders, check ids and titles;
//! * `check <chapter>`: runs a chapter's suite against our binaries, or against the
//!   templates given (`--server './echo_server {port}'`);
//! * `grade <dir> --chapter chNN`: the whole study group, a table and files for CI;
//! * `lab lossy`: TCP against UDP in a network namespace that drops packets;
//! * `bench`: the server models side by side (table, charts, JSON; `--quick` for CI).
//!
//! Exit statuses: 0 all passed; 1 a check or test failed; 2 a command line that
//! cannot run (an unknown chapter, a bad template), said in one line before anything
//! runs.

mod bench;
mod cargo;
mod check;
mod grade;
mod lab;
mod list;
mod output;
mod test_all;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    about = "The socket workbook's commands: test, list, check, grade, lab and bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build everything and run every test; exit 0 only when all pass
    TestAll(test_all::TestAllArgs),
    /// List chapters, their roles (with placeholders) and their checks
    List,
    /// Grade a chapter: our reference programs, or yours given as templates
    Check(check::CheckArgs),
    /// Grade a whole study group: one folder per member, each with a workbook.toml
    Grade(grade::GradeArgs),
    /// Run a lab: `lossy` (TCP against UDP with packet loss; needs nftables, not root)
    Lab(lab::LabArgs),
    /// Measure the server models side by side: a table, charts, JSON (--quick: under 30 s)
    Bench(bench::BenchArgs),
    /// (internal) the lab's child, inside its own network namespace
    #[command(hide = true)]
    LabInside {
        #[arg(long)]
        loss: u32,
        #[arg(long)]
        count: u64,
    },
}

/// Ctrl-C (or SIGTERM, SIGHUP) reaches only the checker: the programs under test run in
/// process groups of their own. A thread waits for those signals and ends every check's
/// processes before the checker exits, so nothing of a student's is left running. (The
/// programs under test do not inherit the mask: `harness::launch` empties it.)
pub(crate) fn end_checks_on_interrupt() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    // Blocked in every thread (threads spawned later inherit the mask); only sigwait takes them.
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if let Ok(signal) = set.wait() {
            harness::supervise::end_every_check();
            eprintln!("\ninterrupted ({signal}): every program the checks started was stopped");
            std::process::exit(130);
        }
    });
}

fn main() -> ExitCode {
    // Before anything raises a limit: what programs under test get is what we got.
    harness::launch::remember();
    let cli = Cli::parse();
    // `check --wire` starts it itself, after making the namespace its checks run in:
    // a user namespace is refused to a process that already has a second thread.
    let wire = matches!(&cli.command, Command::Check(args) if args.wire);
    if matches!(cli.command, Command::Check(_) | Command::Grade(_)) && !wire {
        end_checks_on_interrupt();
    }
    let result = match cli.command {
        Command::TestAll(args) => test_all::run(args),
        Command::List => list::run(),
        Command::Check(args) => check::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Grade(args) => grade::run(args),
        Command::Bench(args) => bench::run(args),
        Command::LabInside { loss, count } => lab::inside(loss, count),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
