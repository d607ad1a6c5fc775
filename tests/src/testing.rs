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
