//! `cargo xtask bench`: the server models side by side, measured on this machine.
//!
//! Each *cell* is one workload (1 connection x 64 B, 50 x 16 KiB, connect-echo-close
//! at 8, ...) and the servers that compete in it. A cell runs in rounds; each round
//! starts every contender afresh in turn (A B C, A B C, ...: alternation, so a drift
//! in the machine hits all alike), drives it with the harness's closed-loop generator
//! ([`harness::loadgen`]) and stops it. The report gives each contender's median over
//! the rounds and the spread, in a Markdown table (terminal and
//! `target/bench/report.md`), an SVG chart per cell and, with `--json`, JSON.
//!
//! Placement: where this process may use two CPUs, every server is pinned to the
//! first and the generator's thread to the second (sched_setaffinity), so they do
//! not compete for a core; the report says which.

mod http;
mod report;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::loadgen::{self, Moment, Plan, ServerUsage, Workload};

use crate::cargo;
use report::{Cell, Report, Sample};
use servers::{Binaries, Contender, Model, Running};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A run under 30 seconds (one round, short windows): for CI, and a first look
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON on stdout (report.md and the charts are written anyway)
    #[arg(long)]
    json: bool,
    /// Rounds per cell; each round runs every contender once (default 5, --quick 1)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: Option<u32>,
    /// Run only the cells whose id contains this text (e.g. `udp`, `tcp-50`); repeatable
    #[arg(long = "cell", value_name = "TEXT")]
    cells: Vec<String>,
    /// Where report.md, report.json and the charts go
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// (tests) take the workbook's servers from this cargo output folder instead of a
    /// release build, and leave tokio out
    #[arg(long, hide = true, value_name = "DIR")]
    prebuilt: Option<PathBuf>,
}

/// How long each run loads the server.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    pub rounds: u32,
    #[serde(serialize_with = "report::millis")]
    pub warmup: Duration,
    #[serde(serialize_with = "report::millis")]
    pub window: Duration,
}

/// What a cell asks of the generator and who competes in it.
struct CellSpec {
    id: &'static str,
    title: &'static str,
    workload: Workload,
    models: &'static [Model],
    tokio: bool,
    /// Also the iterative server, once (the workbook's, to show its fairness).
    plus_iterative: bool,
}

const ALL_TCP: &[Model] = &[
    Model::Iterative,
    Model::Fork,
    Model::Select,
    Model::Epoll,
    Model::Threads,
];
const CONCURRENT: &[Model] = &[Model::Fork, Model::Select, Model::Epoll, Model::Threads];

fn cells() -> Vec<CellSpec> {
    let echo = |conns, idle, size| Workload::Echo { conns, idle, size };
    vec![
        CellSpec {
            id: "tcp-1x64",
            title: "1 connection, 64 B messages",
            workload: echo(1, 0, 64),
            models: ALL_TCP,
            tokio: true,
            plus_iterative: false,
        },
        CellSpec {
            id: "tcp-50x64",
            title: "50 connections, 64 B messages",
            workload: echo(50, 0, 64),
            models: CONCURRENT,
            tokio: true,
            plus_iterative: true,
        },
        CellSpec {
            id: "tcp-50x16k",
            title: "50 connections, 16 KiB messages",
            workload: echo(50, 0, 16 * 1024),
            models: CONCURRENT,
            tokio: true,
            plus_iterative: false,
        },
        CellSpec {
            id: "idle-900",
            title: "50 active + 900 idle connections, 64 B messages",
            workload: echo(50, 900, 64),
            models: &[Model::Select, Model::Epoll],
            tokio: false,
            plus_iterative: false,
        },
        CellSpec {
            id: "cec-1",
            title: "connect-echo-close, 1 at a time, 64 B",
            workload: Workload::ConnectEchoClose {
                concurrency: 1,
                size: 64,
            },
            models: ALL_TCP,
            tokio: true,
            plus_iterative: false,
        },
        CellSpec {
            id: "cec-8",
            title: "connect-echo-close, 8 at a time, 64 B",
            workload: Workload::ConnectEchoClose {
                concurrency: 8,
                size: 64,
            },
            models: ALL_TCP,
            tokio: true,
            plus_iterative: false,
        },
        CellSpec {
            id: "udp-1",
            title: "UDP, 1 socket, 64 B datagrams",
            workload: Workload::Udp {
                sockets: 1,
                size: 64,
            },
            models: &[Model::Udp],
            tokio: false,
            plus_iterative: false,
        },
        CellSpec {
            id: "udp-50",
            title: "UDP, 50 sockets, 64 B datagrams",
            workload: Workload::Udp {
                sockets: 50,
                size: 64,
            },
            models: &[Model::Udp],
            tokio: false,
            plus_iterative: false,
        },
    ]
}

/// Where the server and the generator run: the first two CPUs this process may use.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Placement {
    pub server_cpu: Option<usize>,
    pub generator_cpu: Option<usize>,
}

impl Placement {
    fn choose() -> Placement {
        use nix::sched::{CpuSet, sched_getaffinity};
        let allowed: Vec<usize> = sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..CpuSet::count())
                    .filter(|&c| set.is_set(c).unwrap_or(false))
                    .collect()
            })
            .unwrap_or_default();
        match allowed[..] {
            [server, generator, ..] => Placement {
                server_cpu: Some(server),
                generator_cpu: Some(generator),
            },
            _ => Placement {
                server_cpu: None,
                generator_cpu: None,
            },
        }
    }

    pub fn describe(&self) -> String {
        match (self.server_cpu, self.generator_cpu) {
            (Some(s), Some(g)) => format!("server pinned to CPU {s}, load generator to CPU {g}"),
            _ => "one CPU: server and load generator share it (not pinned)".into(),
        }
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let timing = if args.quick {
        Timing {
            rounds: args.rounds.unwrap_or(1),
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(150),
        }
    } else {
        Timing {
            rounds: args.rounds.unwrap_or(5),
            warmup: Duration::from_millis(150),
            window: Duration::from_millis(500),
        }
    };
    let specs: Vec<CellSpec> = cells()
        .into_iter()
        .filter(|c| args.cells.is_empty() || args.cells.iter().any(|f| c.id.contains(f.as_str())))
        .collect();
    let with_http = args.cells.is_empty() || args.cells.iter().any(|f| "http".contains(f.as_str()));
    if specs.is_empty() && !with_http {
        eprintln!(
            "error: no cell matches {:?}; the cells are: {}, http",
            args.cells,
            cells().iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let out = cargo::root().join(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    eprintln!("bench: building the servers (release), the C twins and the tokio server ...");
    let binaries = Binaries::build(&out, args.prebuilt.as_deref(), args.prebuilt.is_none())?;
    // Our own subreaper: a killed fork server's children come back to us to be reaped.
    harness::supervise::become_subreaper();
    // The idle cell holds 950 connections on our side too.
    harness::launch::raise_own_open_file_limit();
    let placement = Placement::choose();
    eprintln!("bench: {}", placement.describe());
    let started = Instant::now();
    let mut report = Report::new(timing, placement, args.quick, binaries.skipped.clone());
    for spec in &specs {
        let mut contenders =
            binaries.contenders(spec.models, spec.tokio && args.prebuilt.is_none());
        if spec.plus_iterative {
            contenders.extend(
                binaries
                    .contenders(&[Model::Iterative], false)
                    .into_iter()
                    .filter(|c| c.maker == servers::Maker::Workbook),
            );
        }
        eprintln!(
            "bench: {} ({}): {} servers x {} rounds",
            spec.id,
            spec.title,
            contenders.len(),
            timing.rounds
        );
        let cell = run_cell(spec, &contenders, timing, placement)?;
        report.cells.push(cell);
    }
    if with_http {
        report
            .cells
            .push(http::run_cell(&binaries, timing, placement)?);
    }
    report.elapsed = started.elapsed();
    report.write(&out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.markdown());
    }
    eprintln!(
        "bench: {} cells in {:.0} s; report in {}",
        report.cells.len(),
        report.elapsed.as_secs_f64(),
        out.join("report.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Every round runs every contender once, in turn.
fn run_cell(
    spec: &CellSpec,
    contenders: &[Contender],
    timing: Timing,
    placement: Placement,
) -> anyhow::Result<Cell> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); contenders.len()];
    for _ in 0..timing.rounds {
        for (i, contender) in contenders.iter().enumerate() {
            let sample = run_once(contender, spec.workload, timing, placement)
                .with_context(|| format!("{}: {}", spec.id, contender.label))?;
            samples[i].push(sample);
        }
    }
    Ok(Cell::new(
        spec.id,
        spec.title,
        describe(spec.workload),
        contenders,
        samples,
    ))
}

pub(crate) fn describe(workload: Workload) -> String {
    match workload {
        Workload::Echo { conns, idle, size } if idle > 0 => {
            format!("echo, {conns} connections + {idle} idle, {size} B")
        }
        Workload::Echo { conns, size, .. } => format!("echo, {conns} connections, {size} B"),
        Workload::ConnectEchoClose { concurrency, size } => {
            format!("connect-echo-close (RST), {concurrency} concurrent, {size} B")
        }
        Workload::Udp { sockets, size } => format!("UDP echo, {sockets} sockets, {size} B"),
        Workload::Http { conns } => {
            format!("HTTP/1.1 GET /, {conns} keep-alive connections, one request in flight on each")
        }
    }
}

/// One contender, one round: start it, load it, read its usage around the window, stop it.
fn run_once(
    contender: &Contender,
    workload: Workload,
    timing: Timing,
    placement: Placement,
) -> anyhow::Result<Sample> {
    let server = Running::start(contender, placement.server_cpu)?;
    measure(server, workload, timing, placement)
}

/// Loads a started server for one round, reads its usage around the window, stops it.
pub(crate) fn measure(
    mut server: Running,
    workload: Workload,
    timing: Timing,
    placement: Placement,
) -> anyhow::Result<Sample> {
    let plan = Plan {
        target: server.addr,
        workload,
        warmup: timing.warmup,
        window: timing.window,
        cpu: placement.generator_cpu,
    };
    let pid = server.pid;
    let (mut before, mut after) = (ServerUsage::default(), ServerUsage::default());
    let measured = loadgen::run(&plan, |moment| match moment {
        Moment::WindowOpens => before = ServerUsage::read(pid),
        Moment::WindowCloses => after = ServerUsage::read(pid),
    })?;
    server.stop();
    Ok(Sample::from_run(&measured, before, after))
}
