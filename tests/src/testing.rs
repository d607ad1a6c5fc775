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
    let text = text_report(&records, Colour::Never);
    println!("{text}");
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

/// Runs a chapter's demo (`binary` with `args`) and returns its transcript with every
/// call shown in two pieces joined back into one line (`syscalls::trace::joined`): a call
/// is split when the other side acted while it ran, which is a matter of timing, not
/// what a test of the demo looks for. Panics, with the output, unless the demo exits 0
/// within 60 seconds.
pub fn demo_transcript(binary: &str, args: &[&str]) -> String {
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
    syscalls::trace::joined(&stdout)
}
