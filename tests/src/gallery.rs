//! The gallery: programs in `examples/submissions/<chapter>/<name>/`, written to be
//! graded. Each has a `submission.toml` manifest:
//!
//! ```toml
//! chapter = "ch04"
//! about = "echoes only what its first read() returned, then closes"
//! needs = ["cc"]                                   # tools it needs to build or run
//! build = ["cc -O2 -Wall -o echo_server echo_server.c"]  # run in a copy, no shell
//! must_fail = ["ch04/large-message", "ch04/byte-at-a-time"]
//!
//! [roles]
//! server = "./echo_server {port}"
//! ```
//!
//! A correct submission has `must_fail = []`; a broken twin lists exactly the checks
//! it was written to fail, and the conformance tests assert exactly that set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::check::Settings;
use crate::runner::{CheckResult, Targets, run_chapter};

/// A submission's `submission.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub chapter: String,
    pub about: String,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub build: Vec<String>,
    pub roles: BTreeMap<String, String>,
    pub must_fail: Vec<String>,
}

/// The Debian package that provides a tool a submission needs.
pub fn package_of(tool: &str) -> &str {
    match tool {
        "cc" | "gcc" => "gcc",
        "python3" => "python3",
        other => other,
    }
}

/// Reads `<dir>/submission.toml`.
pub fn manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("submission.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

/// Every submission directory under `examples/submissions/`, sorted.
pub fn all_submissions(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let base = root.join("examples/submissions");
    for chapter in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        for sub in std::fs::read_dir(chapter.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if sub.path().join("submission.toml").is_file() {
                found.push(sub.path());
            }
        }
    }
    found.sort();
    found
}

/// Why a submission could not be graded.
#[derive(Debug)]
pub enum NotGraded {
    /// A tool it needs is missing (SKIP outside CI).
    MissingTool(String),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for NotGraded {
    fn from(e: anyhow::Error) -> Self {
        NotGraded::Error(e)
    }
}

/// A graded submission: its manifest and every check's result.
#[derive(Debug)]
pub struct Graded {
    pub manifest: Manifest,
    pub results: Vec<CheckResult>,
}

impl Graded {
    /// The ids of the checks that failed, sorted.
    pub fn failed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.status == crate::runner::Status::Fail)
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Builds a copy of the submission in a temporary directory and runs its chapter's
/// checks against it.
pub fn grade(dir: &Path, settings: &Settings) -> Result<Graded, NotGraded> {
    let manifest = manifest(dir)?;
    for tool in &manifest.needs {
        if crate::template::resolve_program(tool).is_err() {
            return Err(NotGraded::MissingTool(format!(
                "{} needs {tool}: install it with `apt-get install {}`",
                dir.display(),
                package_of(tool)
            )));
        }
    }
    let chapter = crate::suites::chapter(&manifest.chapter)
        .with_context(|| format!("{}: unknown chapter {}", dir.display(), manifest.chapter))?;
    let build_dir = tempfile::Builder::new()
        .prefix("workbook-build-")
        .tempdir()
        .context("create build directory")?;
    copy_dir(dir, build_dir.path())?;
    for command in &manifest.build {
        build_step(command, build_dir.path(), Duration::from_secs(120))
            .with_context(|| format!("build {}", dir.display()))?;
    }
    let targets = Targets::given(&chapter, &manifest.roles, build_dir.path(), None, true)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let results = run_chapter(&chapter, &targets, None, settings, |_| {});
    Ok(Graded { manifest, results })
}

/// Copies a folder recursively (a submission into its build directory).
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Runs one build command (split like a shell, no shell) in `dir`, within `limit`.
pub fn build_step(command: &str, dir: &Path, limit: Duration) -> anyhow::Result<()> {
    let words = shell_words::split(command).with_context(|| format!("split {command:?}"))?;
    let Some((program, args)) = words.split_first() else {
        bail!("empty build command");
    };
    let log = tempfile::tempfile().context("build log")?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .spawn()
        .with_context(|| format!("run {command}"))?;
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{command}` took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !status.success() {
        use std::io::{Read, Seek};
        let mut log = log;
        let mut text = String::new();
        let _ = log.seek(std::io::SeekFrom::Start(0));
        let _ = log.read_to_string(&mut text);
        bail!("`{command}` failed ({status}):\n{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every submission in the gallery is graded by some chapter's conformance test, and
    /// every manifest parses: no entry can be added and forgotten.
    #[test]
    fn every_gallery_entry_is_asserted_by_a_conformance_test() {
        let root = crate::repo_root();
        let mut tests = String::new();
        for entry in std::fs::read_dir(root.join("crates"))
            .expect("crates/")
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("tests/conformance.rs")) {
                tests.push_str(&text);
            }
        }
        let base = root.join("examples/submissions");
        let mut missing = Vec::new();
        for dir in all_submissions(&root) {
            let m = manifest(&dir).unwrap_or_else(|e| panic!("{e:#}"));
            let rel = dir
                .strip_prefix(&base)
                .expect("under the gallery")
                .to_string_lossy()
                .into_owned();
            assert!(
                rel.starts_with(&m.chapter),
                "{rel} is filed under another chapter than its manifest's {}",
                m.chapter
            );
            if !tests.contains(&format!("assert_submission(\"{rel}\")")) {
                missing.push(rel);
            }
        }
        assert!(
            missing.is_empty(),
            "gallery entries no conformance test grades: {missing:?}"
        );
    }
}
