//! The gallery: programs in `examples/submissions/<chapter>/<name>/`, written to be
//! graded. Each has a `submission.toml` manifest:
//!
//! ```toml
//! chapter = "ch04"
//! origin = "twin"           # "model", "twin", "standalone" or "student"
//! about = "the book's echo server with SIGPIPE at its default action"
//! base = "../book-style"    # a twin: this model answer plus the folder's bug.patch
//! needs = ["cc"]            # tools it needs to build or run (default: the base's)
//! build = ["cc -O2 -Wall -o echo_server echo_server.c"]  # no shell (default: the base's)
//! must_fail = ["ch04/peer-stops-reading"]
//!
//! [roles]
//! server = "./echo_server {port}"
//! ```
//!
//! * A **model** answer is written as the book would write it, with the book's bugs
//!   fixed; it must pass every check of its roles (`must_fail = []`).
//! * A **twin** is a model answer plus one bug: `bug.patch`, a unified diff against
//!   the base folder, applied when the gallery builds it, so the entry shows exactly the
//!   mistake. A twin without a patch grades its base under another chapter's suite.
//! * A **standalone** entry is a whole program of ours that shows one bug where there
//!   is no model answer in its language to patch.
//! * A **student** submission was written by someone who had only the chapter's README,
//!   as a study-group member would write it; it stays whole.
//!
//! Any entry may name a `base` without a patch to reuse another chapter's program (the
//! ch12 iterative server graded as ch18's): its files come first, the entry's own after.
//!
//! Every entry's conformance test (generated from the folders: `tests/tests/gallery.rs`)
//! asserts that exactly `must_fail` fails, and that the report matches the entry's
//! `report.txt`, what a student would read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Who wrote an entry, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Our model answer, as the book would write it with its bugs fixed.
    Model,
    /// A model answer plus one bug (`bug.patch`).
    Twin,
    /// A whole program of ours showing one bug, where no model answer in its language
    /// exists to patch (a Python server that recv()s once).
    Standalone,
    /// Written by someone who had only the chapter's README, as a study-group member
    /// writes homework: correct or with the bugs members really make.
    Student,
}

/// A submission's `submission.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub chapter: String,
    pub origin: Origin,
    pub about: String,
    /// A twin's model answer, relative to the twin's folder.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub needs: Option<Vec<String>>,
    #[serde(default)]
    pub build: Option<Vec<String>>,
    pub roles: BTreeMap<String, String>,
    pub must_fail: Vec<String>,
}

/// Files of an entry's folder that are not part of the program.
const NOT_PROGRAM: [&str; 3] = ["submission.toml", "bug.patch", "report.txt"];

/// The Debian package that provides a tool a submission needs.
pub fn package_of(tool: &str) -> &str {
    match tool {
        "cc" | "gcc" => "gcc",
        "python3" => "python3",
        "go" => "golang",
        "node" => "nodejs",
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

/// An entry ready to grade: its manifest and a built copy of its program.
#[derive(Debug)]
pub struct Built {
    pub manifest: Manifest,
    /// The temporary folder the program was assembled and built in (removed on drop).
    pub dir: tempfile::TempDir,
}

/// Why an entry could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// A tool it needs is missing (SKIP outside CI).
    MissingTool(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for BuildError {
    fn from(e: anyhow::Error) -> Self {
        BuildError::Failed(e)
    }
}

/// The tools an entry needs and the commands that build it: its own, or else its
/// base's, and so on down the chain of bases (a twin of a twin builds as its model).
fn needs_and_build(dir: &Path, m: &Manifest) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut needs, mut build) = (m.needs.clone(), m.build.clone());
    let (mut dir, mut base) = (dir.to_path_buf(), m.base.clone());
    for _ in 0..4 {
        if needs.is_some() && build.is_some() {
            break;
        }
        let Some(b) = base else { break };
        dir = dir.join(b);
        let bm = manifest(&dir)?;
        needs = needs.or(bm.needs);
        build = build.or(bm.build);
        base = bm.base;
    }
    Ok((needs.unwrap_or_default(), build.unwrap_or_default()))
}

/// Assembles an entry in a temporary folder (a twin: its base's files, then its own,
/// then its `bug.patch` applied) and runs its build commands there.
pub fn build(dir: &Path) -> Result<Built, BuildError> {
    let manifest = manifest(dir)?;
    let (needs, build) = needs_and_build(dir, &manifest)?;
    for tool in &needs {
        if crate::template::resolve_program(tool).is_err() {
            return Err(BuildError::MissingTool(format!(
                "{} needs {tool}: install it with `apt-get install {}`",
                dir.display(),
                package_of(tool)
            )));
        }
    }
    let built = tempfile::Builder::new()
        .prefix("workbook-build-")
        .tempdir()
        .context("create build directory")?;
    assemble(dir, built.path(), 0)?;
    for command in &build {
        build_step(command, built.path(), Duration::from_secs(120))
            .with_context(|| format!("build {}", dir.display()))?;
    }
    Ok(Built {
        manifest,
        dir: built,
    })
}

/// Puts an entry's program in `to`: its base's program first (assembled the same way,
/// so a twin of a twin carries both patches), then its own files, then its `bug.patch`.
fn assemble(dir: &Path, to: &Path, depth: usize) -> anyhow::Result<()> {
    if depth > 4 {
        bail!("{}: bases nested more than 4 deep", dir.display());
    }
    if let Some(base) = manifest(dir)?.base {
        assemble(&dir.join(base), to, depth + 1)?;
    }
    copy_program(dir, to)?;
    let patch = dir.join("bug.patch");
    if patch.is_file() {
        apply_patch(&patch, to).with_context(|| format!("apply {}", patch.display()))?;
    }
    Ok(())
}

/// Copies an entry's program files (not its manifest, patch or golden report).
fn copy_program(from: &Path, to: &Path) -> anyhow::Result<()> {
    copy_filtered(from, to, &|name| !NOT_PROGRAM.iter().any(|n| name == *n))
}

/// Applies a unified diff (one or more files, paths as `a/name` and `b/name`) to the
/// files under `dir`.
pub fn apply_patch(patch: &Path, dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(patch)?;
    for one in split_patch(&text) {
        let parsed = diffy::Patch::from_str(&one).context("parse the patch")?;
        let name = parsed
            .modified()
            .or(parsed.original())
            .context("the patch names no file")?;
        let name = name.strip_prefix("b/").unwrap_or(name);
        let target = dir.join(name);
        let original = std::fs::read_to_string(&target)
            .with_context(|| format!("read {}", target.display()))?;
        let patched = diffy::apply(&original, &parsed)
            .with_context(|| format!("the patch does not apply to {name}"))?;
        std::fs::write(&target, patched)?;
    }
    Ok(())
}

/// The per-file parts of a unified diff: each starts at its `--- ` line.
fn split_patch(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let starts_file = line.starts_with("--- ")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("+++ "));
        if starts_file || parts.is_empty() {
            parts.push(String::new());
        }
        parts.last_mut().expect("a part").push_str(line);
    }
    parts.retain(|p| p.contains("\n+++ ") || p.starts_with("+++ "));
    parts
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    copy_filtered(from, to, &|_| true)
}

/// Copies the entries of `from` whose name `keep` accepts (recursively, whole) to `to`.
fn copy_filtered(
    from: &Path,
    to: &Path,
    keep: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if !keep(&name) {
            continue;
        }
        let target = to.join(&name);
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

/// The report of an entry as its `report.txt` keeps it: what a student reads, without
/// what changes from run to run.
///
/// * Kept whole: each check's line (without its duration), the hint, `expected:`,
///   notes, skip reasons, `its stderr ended with:`.
/// * A failure's message is kept up to its first `: `, the part that says what
///   happened; what follows is the symptom as the kernel's timing made it (a dead
///   server's port answers with a reset or a refusal, a closing one with end of stream
///   or a reset). Its continuation lines go too.
/// * Dropped: `sent:`, `got:`, `seen:`, `doing:` and the stderr lines (data, and
///   snapshots of a program in motion).
/// * Numbers become `N` (ports, pids, counts measured on a busy machine), temporary
///   paths `TMP`.
pub fn normalized_report(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix('[')
            && let Some((tag, field)) = rest.split_once("] ")
        {
            // `doing:` is a snapshot of a program in motion (a loop is caught in one
            // call or another): data too.
            let data = ["sent:", "got:", "seen:", "doing:", "|"]
                .iter()
                .any(|f| field.starts_with(f));
            if data || field.starts_with("  ") {
                continue;
            }
            if field.starts_with("its stderr") {
                continue;
            }
            let labelled = [
                "expected:",
                "hint:",
                "note:",
                "skipped:",
                "doing:",
                "its stderr",
                "the same cause as",
            ]
            .iter()
            .any(|f| field.starts_with(f));
            let head = match field.find(": ") {
                Some(at) if !labelled => &field[..at + 1],
                _ => field,
            };
            // Hints and skip reasons are the suite's own words: no number in them varies.
            let fixed = field.starts_with("hint:") || field.starts_with("skipped:");
            let head = if fixed {
                head.to_string()
            } else {
                normalize_numbers(head)
            };
            out.push_str(&format!("    [{tag}] {head}\n"));
            continue;
        }
        let mut line = line.to_string();
        // `ch04/echo-line                     PASS    0.07s  title`: drop the time.
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 3
            && ["PASS", "FAIL", "SKIP"].contains(&words[1])
            && words[2]
                .strip_suffix('s')
                .is_some_and(|t| t.parse::<f64>().is_ok())
            && let Some(at) = line.find(words[2])
        {
            let title = line[at + words[2].len()..].trim_start();
            line = format!("{:<34} {}  {title}", words[0], words[1]);
        }
        // A check's line and the summary are the suite's own words and counts.
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Replaces numbers (with their thousands separators) by `N`, and temporary paths by
/// `TMP`: ports, pids and counts measured on a busy machine (zombies left) vary.
fn normalize_numbers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if line[line.char_indices().nth(i).map_or(0, |(b, _)| b)..].starts_with("/tmp/") {
            out.push_str("TMP");
            while i < chars.len() && !chars[i].is_whitespace() && !"'\")".contains(chars[i]) {
                i += 1;
            }
            continue;
        }
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            let digits = chars[start..i]
                .iter()
                .filter(|c| c.is_ascii_digit())
                .count();
            // Part of a name (`ch04`, `AF_INET6`): not a number.
            let in_a_name =
                start > 0 && (chars[start - 1].is_ascii_alphabetic() || chars[start - 1] == '_');
            if digits >= 1 && !in_a_name {
                out.push('N');
            } else {
                out.extend(&chars[start..i]);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_lose_what_changes_between_runs() {
        let text = "ch04/large-message                 FAIL    1.16s  1 MiB comes back\n    [ch04/large-message] only 1024 of 1,048,576 bytes came back on port 16225 [50062] (/tmp/workbook-x/a)\n    [ch04/large-message] got:      \"xyz\"\n";
        assert_eq!(
            normalized_report(text),
            "ch04/large-message                 FAIL  1 MiB comes back\n    [ch04/large-message] only N of N bytes came back on port N [N] (TMP)\n"
        );
    }

    #[test]
    fn a_patch_of_two_files_is_split_per_file() {
        let patch = "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-c\n+d\n";
        let parts = split_patch(patch);
        assert_eq!(parts.len(), 2);
        assert!(parts[1].starts_with("--- a/y.c"));
    }
}
