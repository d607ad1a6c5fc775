//! # harness: the examiner
//!
//! Everything that grades a program, ours or a student's:
//!
//! * [`template`]: targets, the command templates (`./echo_server {port}`);
//! * [`supervise`]: each check's processes, in a fresh directory and process group,
//!   found even after a double fork (child subreaper), killed and reaped by pid;
//! * [`observe`]: what a program under test is doing: the call each thread is blocked
//!   in, what its fds are, whether it spins;
//! * [`procfs`]: what /proc says: listening sockets, children and their states, fd and
//!   thread counts;
//! * [`pty`]: client roles on a pseudo-terminal, as a person runs them;
//! * [`peer`]: the checker's own clients and servers (std::net and socket2: the
//!   examiner, not the lesson);
//! * [`launch`]: how a program under test starts: as a terminal starts it;
//! * [`check`]: chapters, roles and checks declared as data, and a check's context;
//! * [`verdict`]: the one verdict type and its evidence, from the check to every report;
//! * [`grading`]: the one grading path, used by `check`, `grade` and the tests;
//! * [`report`]: the one report module: text, JSON and JUnit;
//! * [`suites`]: every chapter's suite, written once against targets;
//! * [`gallery`]: the submissions in `examples/submissions/` and their manifests;
//! * [`testing`]: what each chapter's `tests/conformance.rs` calls;
//! * [`hostile`]: what the chapters' `tests/hostile.rs` share: our servers under lowered
//!   limits, with output nobody reads, against clients that misbehave;
//! * [`wording`]: how a client's output is matched: the lesson decides, the label never fails it;
//! * [`wire`]: with `--wire`, the checks run on a captured private loopback and a
//!   failure's evidence shows the segments (`your server sent RST ...`);
//! * [`lab`]: the loss lab, TCP against UDP in a lossy network namespace;
//! * [`loadgen`]: the bench's closed-loop load generator and /proc usage readings.
//!
//! Linux only: readiness, process facts and supervision all read /proc.

pub mod check;
pub mod gallery;
pub mod grading;
pub mod hostile;
pub mod lab;
pub mod launch;
pub mod loadgen;
pub mod observe;
pub mod peer;
pub mod procfs;
pub mod pty;
pub mod readme;
pub mod report;
pub mod suites;
pub mod supervise;
pub mod template;
pub mod testing;
pub mod verdict;
pub mod wire;
pub mod wording;

use std::path::{Path, PathBuf};

/// The workspace root (the harness lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
