//! The contenders: our chapters' servers (release-built), their C twins (compiled with
//! the machine's cc from `bench/c/`), a tokio echo server (`bench/tokio-echo/`), and for
//! HTTP, ch24 and nginx. Each is started pinned to the server CPU, with
//! `--backlog 4096`, its output to /dev/null, in a process group of its own that is
//! killed whole when the round ends.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use harness::procfs::{self, Proto};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cargo;

/// The server models the workbook teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    Iterative,
    Fork,
    Select,
    Epoll,
    Threads,
    Udp,
    Http,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Fork => "fork",
            Model::Select => "select",
            Model::Epoll => "epoll",
            Model::Threads => "threads",
            Model::Udp => "udp",
            Model::Http => "http",
        }
    }

    /// The workbook package that teaches it, and the subcommand that runs its server.
    fn package(self) -> (&'static str, &'static str) {
        match self {
            Model::Iterative => ("ch04-tcp-echo", "server"),
            Model::Fork => ("ch10-multiprocess", "echo-server"),
            Model::Select => ("ch12-select", "echo-server"),
            Model::Epoll => ("ch17-epoll", "echo-server"),
            Model::Threads => ("ch18-threads", "echo-server"),
            Model::Udp => ("ch06-udp-echo", "server"),
            Model::Http => ("ch24-http-hello", "server"),
        }
    }
}

/// Who wrote the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Maker {
    /// The workbook's chapter server.
    Workbook,
    /// The bench's minimal C server of the same model.
    C,
    /// tokio, the reference a Rust user would reach for.
    Tokio,
    /// nginx, when installed (HTTP only).
    Nginx,
}

/// One server to measure: a model, who made it, and the command that starts it.
#[derive(Debug, Clone)]
pub struct Contender {
    pub label: String,
    pub model: Model,
    pub maker: Maker,
    /// The command; `{port}` is replaced by the port of the round.
    pub argv: Vec<String>,
    pub proto: Proto,
}

/// Every binary the bench needs, built once.
#[derive(Debug)]
pub struct Binaries {
    workbook: Vec<(Model, PathBuf)>,
    c: Vec<(Model, PathBuf)>,
    tokio: Option<PathBuf>,
    /// Why a reference point is missing (printed, and written into the report).
    pub skipped: Vec<String>,
}

impl Binaries {
    /// Builds the workbook's servers (release; or takes them from `prebuilt`, a cargo
    /// output folder, as the report-shape test does), compiles the C twins into
    /// `out/bin`, and builds the tokio server unless it is to be left out.
    pub fn build(
        out: &Path,
        prebuilt: Option<&Path>,
        with_tokio: bool,
    ) -> anyhow::Result<Binaries> {
        let models = [
            Model::Iterative,
            Model::Fork,
            Model::Select,
            Model::Epoll,
            Model::Threads,
            Model::Udp,
            Model::Http,
        ];
        let mut workbook = Vec::new();
        if let Some(dir) = prebuilt {
            for model in models {
                let path = dir.join(model.package().0);
                if !path.is_file() {
                    bail!(
                        "{} is missing: build it first (cargo build -p {})",
                        path.display(),
                        model.package().0
                    );
                }
                workbook.push((model, path));
            }
        } else {
            let mut args = vec!["build", "--quiet", "--bins", "--release"];
            for model in models {
                args.extend(["--package", model.package().0]);
            }
            let artifacts = cargo::build_executables(&args)?;
            for model in models {
                let package = model.package().0;
                let found = artifacts
                    .iter()
                    .find(|a| a.package == package && a.kind == "bin")
                    .with_context(|| format!("cargo built no binary for {package}"))?;
                workbook.push((model, found.executable.clone()));
            }
        }
        let bin = out.join("bin");
        std::fs::create_dir_all(&bin).with_context(|| format!("create {}", bin.display()))?;
        let mut skipped = Vec::new();
        let mut c = Vec::new();
        let sources = cargo::root().join("bench/c");
        for model in &models[..6] {
            let source = sources.join(format!("{}.c", model.name()));
            let binary = bin.join(format!("c-{}", model.name()));
            let status = Command::new("cc")
                .args(["-O2", "-Wall", "-pthread", "-o"])
                .arg(&binary)
                .arg(&source)
                .status();
            match status {
                Ok(s) if s.success() => c.push((*model, binary)),
                Ok(s) => bail!("cc {} failed ({s})", source.display()),
                Err(e) => {
                    skipped.push(format!(
                        "C twins: no C compiler ({e}); install one: apt-get install gcc libc6-dev"
                    ));
                    break;
                }
            }
        }
        let tokio = if with_tokio {
            Some(build_tokio()?)
        } else {
            skipped.push("tokio: not built in this run".into());
            None
        };
        Ok(Binaries {
            workbook,
            c,
            tokio,
            skipped,
        })
    }

    fn workbook(&self, model: Model) -> Option<Contender> {
        let (_, path) = self.workbook.iter().find(|(m, _)| *m == model)?;
        let mut argv = vec![
            path.display().to_string(),
            model.package().1.to_string(),
            "{port}".to_string(),
        ];
        if model != Model::Udp {
            argv.extend(["--backlog".into(), "4096".into()]);
        }
        Some(Contender {
            label: format!("{} (workbook)", model.name()),
            model,
            maker: Maker::Workbook,
            argv,
            proto: proto_of(model),
        })
    }

    fn c(&self, model: Model) -> Option<Contender> {
        let (_, path) = self.c.iter().find(|(m, _)| *m == model)?;
        Some(Contender {
            label: format!("{} (C)", model.name()),
            model,
            maker: Maker::C,
            argv: vec![path.display().to_string(), "{port}".into(), "4096".into()],
            proto: proto_of(model),
        })
    }

    fn tokio(&self) -> Option<Contender> {
        Some(Contender {
            label: "tokio".into(),
            model: Model::Epoll,
            maker: Maker::Tokio,
            argv: vec![
                self.tokio.as_ref()?.display().to_string(),
                "{port}".into(),
                "4096".into(),
            ],
            proto: Proto::Tcp,
        })
    }

    /// The workbook's server of each model, each followed by its C twin, then tokio.
    pub fn contenders(&self, models: &[Model], tokio: bool) -> Vec<Contender> {
        let mut out = Vec::new();
        for &model in models {
            out.extend(self.workbook(model));
            out.extend(self.c(model));
        }
        if tokio {
            out.extend(self.tokio());
        }
        out
    }

    /// ch24 with a pool of `workers` worker processes that may grow to `max` (ch24
    /// forks a spare worker while all are busy, up to `--max-workers`): `max == workers`
    /// is a fixed pool.
    pub fn http(&self, workers: u32, max: u32) -> Option<Contender> {
        let mut contender = self.workbook(Model::Http)?;
        contender.label = if max == workers {
            format!(
                "ch24 {workers} worker{} (fixed)",
                if workers == 1 { "" } else { "s" }
            )
        } else {
            format!("ch24 pool {workers}..{max}")
        };
        contender.argv.extend([
            "--workers".into(),
            workers.to_string(),
            "--max-workers".into(),
            max.to_string(),
        ]);
        Some(contender)
    }
}

fn proto_of(model: Model) -> Proto {
    if model == Model::Udp {
        Proto::Udp
    } else {
        Proto::Tcp
    }
}

/// `cargo build --release` of bench/tokio-echo, a workspace of its own (so the
/// workbook's builds never compile tokio), into target/tokio-echo.
fn build_tokio() -> anyhow::Result<PathBuf> {
    let manifest = cargo::root().join("bench/tokio-echo/Cargo.toml");
    let target = cargo::root().join("target/tokio-echo");
    let status = cargo::cargo()
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .context("run cargo build for bench/tokio-echo")?;
    if !status.success() {
        bail!("building bench/tokio-echo failed ({status})");
    }
    Ok(target.join("release/tokio-echo"))
}

/// A command in a process group of its own, pinned to `cpu` (if any), killed with us.
pub fn pinned_command(argv: &[String], cpu: Option<usize>) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("WORKBOOK_TRACE")
        .process_group(0);
    // SAFETY: prctl() and sched_setaffinity() are async-signal-safe system calls; nothing
    // else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if let Some(cpu) = cpu {
                harness::loadgen::pin_to(cpu).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    command
}

/// A contender running for one round.
#[derive(Debug)]
pub struct Running {
    pub pid: i32,
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl Running {
    /// Starts `contender` on a free port and waits (up to 10 s) until its socket is
    /// ready in /proc/net: listening for TCP, bound for UDP.
    pub fn start(contender: &Contender, cpu: Option<usize>) -> anyhow::Result<Running> {
        let port = harness::peer::free_port().map_err(anyhow::Error::msg)?;
        Running::start_with(&contender.argv, contender.proto, port, cpu)
    }

    pub fn start_with(
        argv: &[String],
        proto: Proto,
        port: u16,
        cpu: Option<usize>,
    ) -> anyhow::Result<Running> {
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut child = pinned_command(&argv, cpu)
            .spawn()
            .with_context(|| format!("start {}", argv.join(" ")))?;
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if procfs::ready_socket(proto, port).is_some() {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("`{}` ended before it was ready ({status})", argv.join(" "));
            }
            if Instant::now() > deadline {
                let mut running = Running {
                    pid,
                    addr: ([127, 0, 0, 1], port).into(),
                    child,
                };
                running.stop();
                bail!("`{}` was not ready within 10 s", argv.join(" "));
            }
            // /proc has no notification; poll until the condition or the deadline.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(Running {
            pid,
            addr: ([127, 0, 0, 1], port).into(),
            child,
        })
    }

    /// Kills the whole process group and reaps the leader; the children a fork server
    /// made are reaped by whoever is their subreaper (we are, see `bench::run`).
    pub fn stop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = self.child.wait();
        // Children of the group were reparented to us (child subreaper): reap them.
        while waitpid(Pid::from_raw(-self.pid), None).is_ok() {}
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}
