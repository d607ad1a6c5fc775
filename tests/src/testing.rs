//! What the tests call: our binary must pass its suite, and each gallery entry must
//! fail exactly the checks its manifest names and read as its `report.txt` says. Both
//! grade through [`crate::grading::grade`], the function `cargo xtask check` uses.

use std::path::Path;

use crate::check::Settings;
use crate::gallery::{self, BuildError};
use crate::grading::{Targets, grade};
use crate::report::{Colour, text_report};
use crate::verdict::{Verdict, failed_ids};

/// Runs the checks of `chapter` whose roles `package` plays against `binary`, and
/// panics, with the report, unless every one of them passes. (A chapter may span
/// crates: each crate's conformance test checks its own roles.)
pub fn assert_reference_passes(chapter: &str, package: &str, binary: &str) {
    let chapter = crate::suites::chapter(chapter).expect("known chapter");
    let binaries =
        std::collections::BTreeMap::from([(package.to_string(), Path::new(binary).to_path_buf())]);
    let targets = Targets::reference(&chapter, &binaries);
    assert!(
        !targets.templates.is_empty(),
        "{package} plays no role of {}",
        chapter.id
    );
    let records = grade(&chapter, &targets, None, &Settings::default(), |_| {});
    record_timings(&format!("{package} (ours)"), &records);
    let text = text_report(&records, Colour::Never);
    println!("{text}");
    let bad: Vec<&str> = records
        .iter()
        .filter(|r| targets.templates.contains_key(r.role) && !matches!(r.verdict, Verdict::Pass))
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "our {} binary did not pass {bad:?}:\n{text}",
        chapter.id
    );
}

/// Builds `examples/submissions/<path>` and grades it; panics unless the checks that
/// fail are exactly those its manifest lists in `must_fail`, and its report (without
/// what changes between runs) is its `report.txt`. With `WORKBOOK_BLESS=1` a differing
/// `report.txt` is rewritten instead, for review in the diff.
pub fn assert_gallery_entry(path: &str) {
    let dir = crate::repo_root().join("examples/submissions").join(path);
    let settings = Settings::default();
    let built = match gallery::build(&dir) {
        Ok(built) => built,
        Err(BuildError::MissingTool(why)) if !settings.ci => {
            println!("SKIP: {why}");
            return;
        }
        Err(BuildError::MissingTool(why)) => panic!("{why} (CI=true: a missing tool fails)"),
        Err(BuildError::Failed(e)) => panic!("{e:#}"),
    };
    let chapter = crate::suites::chapter(&built.manifest.chapter)
        .unwrap_or_else(|| panic!("{path}: unknown chapter {}", built.manifest.chapter));
    let targets = Targets::given(
        &chapter,
        &built.manifest.roles,
        built.dir.path(),
        None,
        true,
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    let records = grade(&chapter, &targets, None, &settings, |_| {});
    record_timings(path, &records);
    let text = text_report(&records, Colour::Never);
    println!("{text}");
    assert_deadlines_kept(path, &records, &settings);
    let mut expected = built.manifest.must_fail.clone();
    expected.sort();
    assert_eq!(
        failed_ids(&records),
        expected,
        "{path} ({}) must fail exactly its manifest's checks:\n{text}",
        built.manifest.about
    );
    let golden = dir.join("report.txt");
    let report = gallery::normalized_report(&text);
    let kept = std::fs::read_to_string(&golden).unwrap_or_default();
    if kept != report {
        if std::env::var_os("WORKBOOK_BLESS").is_some() {
            std::fs::write(&golden, &report).expect("write report.txt");
        } else {
            panic!(
                "{path}: the report a student reads changed; if that is meant, run the test \
                 with WORKBOOK_BLESS=1 and review report.txt.\n--- report.txt\n{kept}\n--- now\n{report}"
            );
        }
    }
}

/// What a check may take beyond the deadline its title states, from the start of that
/// wait: seeing that the program ended (a poll), and ending and reaping its processes
/// (SIGTERM, a grace period, SIGKILL).
pub const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_secs(3);

/// The deadline a check's title promises (`... within 2 s`), if it states one.
pub fn stated_deadline(title: &str) -> Option<std::time::Duration> {
    let rest = title.split("within ").nth(1)?;
    let number = rest.split(" s").next()?;
    number
        .parse::<f64>()
        .ok()
        .map(std::time::Duration::from_secs_f64)
}

/// Deadlines are deadlines: a check whose title states one marks where that wait began
/// ([`crate::check::Ctx::stated_deadline_starts`]), and from there to its end, its
/// programs ended and reaped included, no more than the stated time (scaled by
/// `--timeout`) and [`DEADLINE_SLACK`] go by, passing or failing, however slowly the
/// program under test gives up. (A check that waited for a looping client to stop
/// printing once took 35 s of a 2 s deadline.)
fn assert_deadlines_kept(path: &str, records: &[crate::verdict::Record], settings: &Settings) {
    for r in records {
        let Some(deadline) = stated_deadline(r.title) else {
            continue;
        };
        if matches!(r.verdict, Verdict::Skip(_)) {
            continue;
        }
        let limit = deadline.mul_f64(settings.deadline_factor) + DEADLINE_SLACK;
        // A passing check has reached the wait its title bounds, so it must have marked
        // it; one that failed on the way there has no mark.
        assert!(
            !matches!(r.verdict, Verdict::Pass) || r.after_stated_deadline_began.is_some(),
            "{}: the title states a deadline but the check never marks where its wait begins (Ctx::stated_deadline_starts)",
            r.id
        );
        if let Some(after) = r.after_stated_deadline_began {
            assert!(
                after <= limit,
                "{path}: {} took {after:.1?} after its stated deadline began, more than it and {DEADLINE_SLACK:?}: {}",
                r.id,
                r.title
            );
        }
    }
}

/// With `WORKBOOK_TIMINGS=FILE` (what `cargo xtask test-all --timings` sets), appends one
/// line per graded check to FILE: `who<TAB>check id<TAB>verdict<TAB>seconds`. Each line
/// is one write(2) to a file opened with O_APPEND, so parallel tests do not mix lines.
fn record_timings(who: &str, records: &[crate::verdict::Record]) {
    use std::io::Write;
    let Some(path) = std::env::var_os("WORKBOOK_TIMINGS") else {
        return;
    };
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    for r in records {
        let line = format!(
            "{who}\t{}\t{}\t{:.3}\n",
            r.id,
            r.verdict.label(),
            r.duration.as_secs_f64()
        );
        let _ = file.write_all(line.as_bytes());
    }
}

/// Grades `template` as `role` of `chapter` (only the check `only`, when given), as
/// `cargo xtask check chNN --role ROLE=TEMPLATE` would.
pub fn grade_template(
    chapter: &str,
    role: &str,
    template: &str,
    only: Option<&str>,
) -> Vec<crate::verdict::Record> {
    let chapter = crate::suites::chapter(chapter).expect("known chapter");
    let given = std::collections::BTreeMap::from([(role.to_string(), template.to_string())]);
    let targets =
        Targets::given(&chapter, &given, Path::new("/"), only, false).expect("valid template");
    grade(&chapter, &targets, only, &Settings::default(), |_| {})
}

/// Panics, with the report, unless `template` as `role` passes every check of its role.
pub fn assert_template_passes(chapter: &str, role: &str, template: &str) {
    let records = grade_template(chapter, role, template, None);
    let text = text_report(&records, Colour::Never);
    println!("{text}");
    let failed = failed_ids(&records);
    assert!(failed.is_empty(), "{template} failed {failed:?}:\n{text}");
}

/// Builds `tests/fixtures/probe_server.c` (an echo server that first writes its
/// `/proc/self/status` and `/proc/self/limits` to the file it is given) into `dir`, and
/// returns its path; None when there is no C compiler outside CI (a missing tool fails
/// under CI).
pub fn build_probe(dir: &Path) -> Option<std::path::PathBuf> {
    if crate::template::resolve_program("cc").is_err() {
        assert!(!Settings::default().ci, "the probe needs cc (CI=true)");
        println!("SKIP: the probe needs cc: install it with `apt-get install gcc`");
        return None;
    }
    let source = crate::repo_root().join("tests/fixtures/probe_server.c");
    let binary = dir.join("probe_server");
    let status = std::process::Command::new("cc")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc {} failed", source.display());
    Some(binary)
}

/// Panics unless the probe's record (see [`build_probe`]) shows the state a shell gives
/// a new job: no signal blocked, none ignored, and `open_files` as its open-file limit.
pub fn assert_started_as_a_shell_starts(record: &Path, open_files: u64) {
    let text = std::fs::read_to_string(record).expect("the probe wrote its record");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in the probe's record:\n{text}"))
    };
    assert_eq!(
        field("SigBlk:"),
        "0000000000000000",
        "a blocked signal leaked"
    );
    assert_eq!(
        field("SigIgn:"),
        "0000000000000000",
        "an ignored signal leaked"
    );
    let limit = field("Max open files")
        .split_whitespace()
        .next()
        .expect("soft limit");
    assert_eq!(
        limit,
        open_files.to_string(),
        "the program under test did not get the shell's open-file limit"
    );
}

/// Runs a chapter's demo (`binary` with `args`) and returns its transcript with every
/// call shown in two pieces joined back into one line (`syscalls::trace::joined`): a call
/// is split when the other side acted while it ran, which is a matter of timing, not
/// what a test of the demo looks for. Panics, with the output, unless the demo exits 0
/// within 60 seconds.
pub fn demo_transcript(binary: &str, args: &[&str]) -> String {
    syscalls::trace::joined(&run_demo(binary, args).0)
}

/// Runs a demo with `args` (`--wire`, ...) and returns its transcript as printed (not
/// joined: where a call began and resumed is what a test of the wire looks at), or None
/// where this machine gives no private network (unprivileged user namespaces switched
/// off). The demo must then have said so in one line, how to switch them on included,
/// and run to its end without the wire; that is checked, and the test says it skipped.
pub fn wire_demo(binary: &str, args: &[&str]) -> Option<String> {
    let (stdout, stderr) = run_demo(binary, args);
    if stderr.contains("no private network") {
        assert!(
            stderr.contains("sysctl") && !stdout.contains("[wire]"),
            "the demo without a private network should say how to get one and run without the wire:\n{stderr}"
        );
        println!("SKIP: {}", stderr.trim());
        return None;
    }
    assert!(
        stdout.contains("[wire]"),
        "the demo with {args:?} showed no segment:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Some(stdout)
}

/// The standard output of `tool args` (a Debian tool a test reads its result with), or
/// None, said on stdout, when the tool is missing; under CI (`CI=true`) a missing tool
/// fails instead, so that CI cannot pass by skipping. Panics unless the tool exits 0.
pub fn tool_output(tool: &str, package: &str, args: &[&str]) -> Option<String> {
    if crate::template::resolve_program(tool).is_err() {
        let why = format!("needs {tool}: install it with `apt-get install {package}`");
        assert!(
            !crate::check::Settings::default().ci,
            "{why} (CI=true: a missing tool fails)"
        );
        println!("SKIP: {why}");
        return None;
    }
    let output = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} ended with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The index of the first line of `lines` from `from` on that `wanted` accepts; panics
/// with the transcript, naming `what`, when there is none.
pub fn line_where(lines: &[&str], from: usize, what: &str, wanted: impl Fn(&str) -> bool) -> usize {
    lines
        .iter()
        .skip(from)
        .position(|l| wanted(l))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {what} in:\n{}", lines.join("\n")))
}

/// Runs the demo `runs` times and panics, with the transcript, at the first run that
/// prints an effect before its cause ([`causality_violations`]).
pub fn assert_demo_causal(binary: &str, args: &[&str], runs: usize) {
    for run in 1..=runs {
        let (transcript, _) = run_demo(binary, args);
        let wrong = causality_violations(&transcript);
        assert!(
            wrong.is_empty(),
            "run {run} of {binary} {args:?} printed an effect before its cause:\n{}\n\ntranscript:\n{transcript}",
            wrong.join("\n")
        );
    }
}

/// What a demo's transcript shows happening before its cause:
///
/// * a side's `read()` returning bytes before another side's `write()` of those bytes
///   began (only when some other side's write shows them: a write's shown bytes begin
///   with the read's, or the other way round);
/// * the n-th `accept()` of a side returning before n `connect()`s of other sides began
///   (when any side narrates its connect()).
pub fn causality_violations(transcript: &str) -> Vec<String> {
    struct Io {
        at: usize,
        side: String,
        bytes: String,
        line: String,
    }
    let mut writes: Vec<Io> = Vec::new();
    let mut reads: Vec<Io> = Vec::new();
    let mut connects: Vec<(usize, String)> = Vec::new();
    let mut accepts: Vec<Io> = Vec::new();
    for (at, line) in transcript.lines().enumerate() {
        let Some((side, body)) = line
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
        else {
            continue;
        };
        let io = |bytes: &str| Io {
            at,
            side: side.to_string(),
            bytes: bytes.to_string(),
            line: line.to_string(),
        };
        if let Some(rest) = body.strip_prefix("write(") {
            // The write began here, whole or unfinished: write(3, "...", 14
            if let Some((_, shown)) = rest.split_once(", ")
                && let Some(bytes) = quoted(shown)
            {
                writes.push(io(bytes));
            }
        } else if let Some(rest) = body
            .strip_prefix("read(")
            .and_then(|r| r.split_once(", ").map(|(_, shown)| shown))
            .or_else(|| body.strip_prefix("<... read resumed> "))
        {
            // The read returned here: read(4, "...", 1024) = 14, or its resumption.
            let returned = rest.rsplit_once(") = ").map(|(_, n)| n);
            if returned.is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
                && let Some(bytes) = quoted(rest)
            {
                reads.push(io(bytes));
            }
        } else if body.starts_with("connect(") {
            connects.push((at, side.to_string()));
        } else if (body.starts_with("accept(") && !body.ends_with("<unfinished ...>"))
            || body.starts_with("<... accept resumed>")
        {
            let returned = body.rsplit_once(") = ").map(|(_, n)| n);
            if returned.is_some_and(|n| !n.starts_with('-')) {
                accepts.push(io(""));
            }
        }
    }
    let mut wrong = Vec::new();
    for read in &reads {
        let same = |w: &&Io| {
            w.side != read.side
                && (w.bytes.starts_with(&read.bytes) || read.bytes.starts_with(&w.bytes))
        };
        let matching: Vec<&Io> = writes.iter().filter(same).collect();
        if !matching.is_empty() && matching.iter().all(|w| w.at > read.at) {
            wrong.push(format!(
                "line {}: {:?} returned before the write of those bytes began (line {}: {:?})",
                read.at + 1,
                read.line,
                matching[0].at + 1,
                matching[0].line
            ));
        }
    }
    if !connects.is_empty() {
        let mut by_side: std::collections::BTreeMap<&str, usize> = Default::default();
        for accept in &accepts {
            let n = by_side.entry(&accept.side).or_default();
            *n += 1;
            let began = connects
                .iter()
                .filter(|(at, side)| *at < accept.at && *side != accept.side)
                .count();
            if began < *n {
                wrong.push(format!(
                    "line {}: {:?} is accept() number {n} of [{}], but only {began} connect() had begun",
                    accept.at + 1,
                    accept.line,
                    accept.side
                ));
            }
        }
    }
    wrong
}

/// The escaped bytes of the quoted string `text` begins with (`"Hi\n"...` gives `Hi\n`),
/// a `...` after it dropped: what the narration shows of a buffer.
fn quoted(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&inner[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// Runs `binary` with `args` to its end (60 s at most) and returns its stdout and
/// stderr; panics with its output unless it exits 0.
fn run_demo(binary: &str, args: &[&str]) -> (String, String) {
    let child = std::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(output) => output.unwrap_or_else(|e| panic!("wait for {binary}: {e}")),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("the demo {binary} {args:?} did not end within 60 s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo {binary} {args:?} ended with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (
        stdout.into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_titles_deadline_is_read() {
        assert_eq!(
            stated_deadline("end of input (Ctrl-D) ends the client with status 0 within 2 s"),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            stated_deadline("the writer sees end of file and ends within 3 s, nothing left"),
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(
            stated_deadline(
                "1 MiB and 1 byte in one write comes back byte-identical, and nothing after it"
            ),
            None
        );
    }

    #[test]
    fn a_read_before_its_write_and_an_accept_before_any_connect_are_caught() {
        let fine = "[server] accept(3 <unfinished ...>\n\
            [client] connect(3, 127.0.0.1:9190) = 0\n\
            [server] <... accept resumed>) = 4 (127.0.0.1:5000)\n\
            [server] read(4, <unfinished ...>\n\
            [client] write(3, \"Hello\\n\", 6) = 6\n\
            [server] <... read resumed> \"Hello\\n\", 1024) = 6\n";
        assert_eq!(causality_violations(fine), Vec::<String>::new());
        let wrong = "[server] accept(3) = 4 (127.0.0.1:5000)\n\
            [client] connect(3, 127.0.0.1:9190) = 0\n\
            [server] read(4, \"Hello\\n\", 1024) = 6\n\
            [client] write(3, \"Hello\\n\", 6 <unfinished ...>\n\
            [client] <... write resumed>) = 6\n";
        let found = causality_violations(wrong);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("returned before the write"), "{found:?}");
        assert!(found[1].contains("only 0 connect()"), "{found:?}");
    }
}
