//! # harness: the examiner
//!
//! Everything that grades a program, ours or a student's:
//!
//! * [`template`]: targets, the command templates (`./echo_server {port}`);
//! * [`supervise`]: each check's processes, in a fresh directory and process group,
//!   found even after a double fork (child subreaper), killed and reaped by pid;
//! * [`procfs`]: what /proc says: listening sockets, children and their states, fd and
//!   thread counts;
//! * [`pty`]: client roles on a pseudo-terminal, as a person runs them;
//! * [`peer`]: the checker's own clients and servers (std::net and socket2: the
//!   examiner, not the lesson);
//! * [`check`], [`runner`], [`report`]: checks, suites, running them, the text report;
//! * [`suites`]: every chapter's suite, written once against targets;
//! * [`gallery`]: the submissions in `examples/submissions/` and their manifests;
//! * [`testing`]: what each chapter's `tests/conformance.rs` calls;
//! * [`lab`]: the loss lab, TCP against UDP in a lossy network namespace;
//! * [`loadgen`]: the bench's closed-loop load generator and /proc usage readings.
//!
//! Linux only: readiness, process facts and supervision all read /proc.

pub mod check;
pub mod gallery;
pub mod lab;
pub mod loadgen;
pub mod peer;
pub mod procfs;
pub mod pty;
pub mod report;
pub mod runner;
pub mod suites;
pub mod supervise;
pub mod template;
pub mod testing;

use std::path::{Path, PathBuf};

/// The workspace root (the harness lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
