//! Supervision: every program a check starts runs in a fresh temporary working
//! directory and its own process group, and is killed and reaped, with everything it
//! started, when the check ends.
//!
//! How the checker finds "everything it started", whatever the program did:
//! * the checker is a child subreaper (PR_SET_CHILD_SUBREAPER), so a process that
//!   double-forks or calls setsid() is re-parented to the checker, not to init, and
//!   stays in the checker's process tree;
//! * each check gives its programs a marker in their environment
//!   (`WORKBOOK_CHECK=<token>`), so among the checker's descendants it can tell its own
//!   from those of checks running in parallel; and each program starts a process group
//!   of its own, which a zombie keeps when its environment can no longer be read;
//! * processes are reaped by pid, never with waitpid(-1), which would take the exit
//!   statuses that parallel checks wait for.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::procfs::{self, ProcStat};

/// Marks this process a child subreaper, once: orphans of the programs we start are
/// re-parented to us, so we can still find, kill and reap them.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            eprintln!("warning: prctl(PR_SET_CHILD_SUBREAPER) failed: {e}; a program that double-forks may escape cleanup");
        }
    });
}

/// The checks running now: their markers and the process groups they started, so that
/// a checker interrupted by the user can end them all ([`end_every_check`]).
static RUNNING: std::sync::Mutex<Vec<(String, Vec<i32>)>> = std::sync::Mutex::new(Vec::new());

/// Ends every process of every check still running: each process group gets SIGKILL, and
/// so does every descendant carrying a check's marker. For `cargo xtask` when it is
/// interrupted (Ctrl-C reaches only the checker: programs under test run in process
/// groups of their own, away from the terminal's).
pub fn end_every_check() {
    let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for (marker, groups) in &running {
        for group in groups {
            let _ = killpg(Pid::from_raw(*group), Signal::SIGKILL);
        }
        for p in procfs::subtree(std::process::id() as i32) {
            if procfs::environ_has(p.pid, marker) {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
        }
    }
}

/// How a process ended, in words a student understands.
pub fn describe_status(status: &WaitStatus) -> String {
    match *status {
        WaitStatus::Exited(_, 0) => "exited with status 0".into(),
        WaitStatus::Exited(_, code) if code > 128 && code < 160 => {
            let signal = Signal::try_from(code - 128)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            format!(
                "exited with status {code} (a shell's way of saying its child was killed by signal {}{signal})",
                code - 128
            )
        }
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, core) => format!(
            "was killed by signal {} ({signal}){}",
            signal as i32,
            if core { ", core dumped" } else { "" }
        ),
        WaitStatus::Stopped(_, signal) => format!("was stopped by {signal}"),
        _ => "changed state".to_string(),
    }
}

/// Where a spawned program's standard streams go.
#[derive(Debug)]
pub enum Streams {
    /// stdin from /dev/null; stdout and stderr to log files (never a pipe that fills
    /// up when nobody reads it).
    Logged,
    /// stdin and stdout on a terminal (the slave side of a pseudo-terminal), stderr to
    /// a log file.
    Terminal(std::os::fd::OwnedFd),
}

/// A program a check started.
#[derive(Debug, Clone)]
pub struct Spawned {
    pub pid: i32,
    pub argv: Vec<String>,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
}

impl Spawned {
    /// The last `lines` lines of what the program wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr_log, lines)
    }

    /// The last `lines` lines of what the program wrote to stdout (when logged).
    pub fn stdout_tail(&self, lines: usize) -> String {
        tail(&self.stdout_log, lines)
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One check's processes: starts them, answers for them, and ends them.
#[derive(Debug)]
pub struct Supervisor {
    marker: String,
    workdir: tempfile::TempDir,
    logs: tempfile::TempDir,
    spawned: Vec<Spawned>,
    known: HashSet<i32>,
    statuses: HashMap<i32, WaitStatus>,
    grace: Duration,
    finished: bool,
    env: Vec<(String, String)>,
    /// Terminal masters kept open until the check's processes are gone: a program must
    /// not see its terminal vanish (EIO, SIGHUP) while the checker still reads its
    /// evidence.
    held: Vec<std::os::fd::OwnedFd>,
}

impl Supervisor {
    /// A supervisor with fresh directories; `grace` is how long programs get between
    /// SIGTERM and SIGKILL at the end.
    pub fn new(grace: Duration) -> anyhow::Result<Supervisor> {
        become_subreaper();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Instant::now().elapsed().as_nanos() ^ u128::from(nanos_now())
        );
        Ok(Supervisor {
            marker: format!("WORKBOOK_CHECK={token}"),
            workdir: tempfile::Builder::new()
                .prefix("workbook-check-")
                .tempdir()
                .context("create the check's working directory")?,
            logs: tempfile::Builder::new()
                .prefix("workbook-logs-")
                .tempdir()
                .context("create the check's log directory")?,
            spawned: Vec::new(),
            known: HashSet::new(),
            statuses: HashMap::new(),
            grace,
            finished: false,
            env: Vec::new(),
            held: Vec::new(),
        })
    }

    /// Sets an environment variable for every program this check starts from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Keeps `fd` open until [`Supervisor::finish`] has ended every process.
    pub fn hold(&mut self, fd: std::os::fd::OwnedFd) {
        self.held.push(fd);
    }

    /// The fresh working directory the programs run in.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// Starts `argv` in the working directory, in a process group of its own, with the
    /// check's marker in its environment, as a shell would start it ([`crate::launch`])
    /// with `limits` over the shell's.
    pub fn spawn(
        &mut self,
        argv: &[String],
        streams: Streams,
        limits: &crate::launch::Limits,
    ) -> anyhow::Result<Spawned> {
        let n = self.spawned.len();
        let stdout_log = self.logs.path().join(format!("{n}.stdout"));
        let stderr_log = self.logs.path().join(format!("{n}.stderr"));
        let stderr = std::fs::File::create(&stderr_log).context("create stderr log")?;
        let (key, value) = self.marker.split_once('=').expect("marker has =");
        let mut command = crate::launch::command(argv, limits);
        command
            .current_dir(self.workdir.path())
            .env(key, value)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .stderr(stderr);
        match streams {
            Streams::Logged => {
                let stdout = std::fs::File::create(&stdout_log).context("create stdout log")?;
                command.stdin(Stdio::null()).stdout(stdout);
            }
            Streams::Terminal(slave) => {
                command
                    .stdin(Stdio::from(slave.try_clone().context("dup terminal")?))
                    .stdout(Stdio::from(slave));
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", shell_words::join(argv)))?;
        // Dropping the Command closes our copies of the terminal's slave side.
        drop(command);
        let spawned = Spawned {
            pid: child.id() as i32,
            argv: argv.to_vec(),
            stdout_log,
            stderr_log,
        };
        self.known.insert(spawned.pid);
        self.spawned.push(spawned.clone());
        if let Ok(mut running) = RUNNING.lock() {
            match running.iter_mut().find(|(m, _)| *m == self.marker) {
                Some((_, groups)) => groups.push(spawned.pid),
                None => running.push((self.marker.clone(), vec![spawned.pid])),
            }
        }
        Ok(spawned)
    }

    /// Forgets a program that has ended and been reaped, so that it is no longer the
    /// program under test (a server started again on another port replaces it).
    pub fn forget(&mut self, pid: i32) {
        if self.statuses.contains_key(&pid) {
            self.spawned.retain(|s| s.pid != pid);
        }
    }

    /// The first program the check started: the program under test (later ones are the
    /// checker's helpers or other roles).
    pub fn first_spawned(&self) -> Option<&Spawned> {
        self.spawned.first()
    }

    /// The last `lines` lines of stderr of the first program the check started (the
    /// program under test; later ones are the checker's helpers or other roles).
    pub fn spawned_stderr_tail(&self, lines: usize) -> String {
        self.spawned
            .first()
            .map(|s| s.stderr_tail(lines))
            .unwrap_or_default()
    }

    /// The check's processes now alive (zombies included), parents first.
    pub fn processes(&mut self) -> Vec<ProcStat> {
        let me = std::process::id() as i32;
        let mut ours: HashSet<i32> = HashSet::new();
        let mut out = Vec::new();
        for p in procfs::subtree(me) {
            if p.pid == me {
                continue;
            }
            // A process of ours: one seen before, a child of one, one whose environment
            // carries the marker, or one in a process group of ours (a zombie orphaned
            // to us has no readable environment, but keeps its group).
            let is_ours = self.known.contains(&p.pid)
                || ours.contains(&p.ppid)
                || self.spawned.iter().any(|s| s.pid == p.pgrp)
                || procfs::environ_has(p.pid, &self.marker);
            if is_ours {
                ours.insert(p.pid);
                self.known.insert(p.pid);
                out.push(p);
            }
        }
        out
    }

    /// How a program this check spawned ended, if it has (reaps it once).
    pub fn status(&mut self, pid: i32) -> Option<WaitStatus> {
        if let Some(status) = self.statuses.get(&pid) {
            return Some(*status);
        }
        if !self.spawned.iter().any(|s| s.pid == pid) {
            return None;
        }
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(status) => {
                self.statuses.insert(pid, status);
                Some(status)
            }
        }
    }

    /// Waits until the spawned program `pid` ends, up to `deadline`.
    pub fn wait_exit(&mut self, pid: i32, deadline: Duration) -> Option<WaitStatus> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.status(pid) {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reaps the check's processes that are our children and have ended.
    fn reap_ours(&mut self) {
        let me = std::process::id() as i32;
        for p in self.processes() {
            if p.ppid != me || p.state != 'Z' {
                continue;
            }
            match waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => {}
                Ok(status) => {
                    self.statuses.entry(p.pid).or_insert(status);
                }
            }
        }
        for s in self.spawned.clone() {
            self.status(s.pid);
        }
    }

    fn signal_all(&mut self, signal: Signal) {
        for s in &self.spawned {
            let _ = killpg(Pid::from_raw(s.pid), signal);
        }
        for p in self.processes() {
            if p.state != 'Z' {
                let _ = kill(Pid::from_raw(p.pid), signal);
            }
        }
    }

    fn wait_gone(&mut self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        loop {
            self.reap_ours();
            if self.processes().is_empty() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Ends every process of the check: SIGTERM, the grace period, SIGKILL, each reaped
    /// by pid. Returns what survived, as `left process N (name) running` lines.
    pub fn finish(&mut self) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let left = self.end_all();
        self.held.clear();
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|(m, _)| *m != self.marker);
        }
        left
    }

    fn end_all(&mut self) -> Vec<String> {
        self.signal_all(Signal::SIGTERM);
        if self.wait_gone(self.grace) {
            return Vec::new();
        }
        self.signal_all(Signal::SIGKILL);
        if self.wait_gone(Duration::from_secs(5)) {
            return Vec::new();
        }
        self.processes()
            .into_iter()
            .map(|p| {
                format!(
                    "left process {} ({}) running, state {}",
                    p.pid, p.comm, p.state
                )
            })
            .collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.finish();
    }
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_double_forked_process_is_found_killed_and_reaped() {
        let mut sup = Supervisor::new(Duration::from_secs(2)).unwrap();
        // The shell starts a sleeper in a new session and exits: the sleeper is
        // orphaned, re-parented to us (the subreaper), and must still be ours.
        let s = sup
            .spawn(
                &sh("setsid sleep 300 & echo started"),
                Streams::Logged,
                &Default::default(),
            )
            .unwrap();
        sup.wait_exit(s.pid, Duration::from_secs(10))
            .expect("the shell exits");
        let deadline = Instant::now() + Duration::from_secs(10);
        let sleeper = loop {
            if let Some(p) = sup.processes().into_iter().find(|p| p.comm == "sleep") {
                break p;
            }
            assert!(Instant::now() < deadline, "the sleeper was never seen");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(sup.finish().is_empty());
        assert!(
            procfs::stat(sleeper.pid).is_none(),
            "the sleeper is gone and reaped"
        );
    }

    #[test]
    fn a_process_that_ignores_sigterm_is_killed() {
        let mut sup = Supervisor::new(Duration::from_millis(200)).unwrap();
        let s = sup
            .spawn(
                &sh("trap '' TERM; echo ready; exec sleep 300"),
                Streams::Logged,
                &Default::default(),
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sup
            .processes()
            .iter()
            .any(|p| p.pid == s.pid && p.comm == "sleep")
        {
            assert!(Instant::now() < deadline, "sleep never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sup.finish().is_empty());
        assert!(matches!(
            sup.status(s.pid),
            Some(WaitStatus::Signaled(_, Signal::SIGKILL, _))
        ));
    }

    #[test]
    fn statuses_are_described_for_a_student() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe_status(&WaitStatus::Signaled(pid, Signal::SIGPIPE, false)),
            "was killed by signal 13 (SIGPIPE)"
        );
        assert!(describe_status(&WaitStatus::Exited(pid, 141)).contains("signal 13 (SIGPIPE)"));
        assert_eq!(
            describe_status(&WaitStatus::Exited(pid, 2)),
            "exited with status 2"
        );
    }
}
