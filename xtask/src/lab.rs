//! `cargo xtask lab lossy`: the loss lab, in a child process whose user and network
//! namespaces (its own, made without root) vanish with it.

use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// The lab to run: `lossy`
    lab: String,
    /// Percentage of packets to drop
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    loss: u32,
    /// Round trips for each of TCP, UDP, UDP with retries
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=10000))]
    count: u64,
}

pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    if args.lab != "lossy" {
        eprintln!("error: unknown lab {:?}; the labs are: lossy", args.lab);
        return Ok(ExitCode::from(2));
    }
    if let Err(missing) = harness::lab::prerequisites() {
        eprintln!("error: {missing}");
        return Ok(ExitCode::from(1));
    }
    // The child makes the namespace: when it ends, however it ends, the namespace and
    // its rule are gone.
    let status = Command::new(std::env::current_exe()?)
        .args([
            "lab-inside",
            "--loss",
            &args.loss.to_string(),
            "--count",
            &args.count.to_string(),
        ])
        .status()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The child's side: enter the namespace, run, print.
pub fn inside(loss: u32, count: u64) -> anyhow::Result<ExitCode> {
    let report = harness::lab::run_inside(loss, count as usize)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}
