//! Tidy tests, in the manner of rust-analyzer's: facts about the source and the
//! documents that no compiler checks. Each says what to do when it fails.

use std::collections::BTreeSet;

use harness::check::{STARTUP_HINT, WORDING_HINT};
use harness::gallery::{self, Origin};
use harness::readme;

fn root() -> std::path::PathBuf {
    harness::repo_root()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every README section a hint sends a reader to exists.
#[test]
fn every_cited_heading_exists() {
    let mut missing = Vec::new();
    let mut sections = vec![
        (String::from("(startup)"), STARTUP_HINT.see),
        (String::from("(wording)"), WORDING_HINT.see),
    ];
    for chapter in harness::suites::chapters() {
        for check in &chapter.checks {
            sections.push((chapter.id_of(check), check.see));
        }
    }
    for (id, see) in sections {
        let headings = readme::headings(&read(see.readme));
        if !headings.iter().any(|h| h == see.heading) {
            missing.push(format!("{id}: {see}"));
        }
    }
    assert!(
        missing.is_empty(),
        "hints cite headings that do not exist (add the section or fix the hint):\n{}",
        missing.join("\n")
    );
}

/// Checks not yet failed by any entry. This list only shrinks: a new check comes with
/// the twin that fails it.
const NOT_YET_FAILED: &[&str] = &[];

/// Every check is failed by at least one gallery entry: a check never shown to fail
/// may be vacuous.
#[test]
fn every_check_has_a_gallery_entry_that_fails_it() {
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for dir in gallery::all_submissions(&root()) {
        let m = gallery::manifest(&dir).unwrap_or_else(|e| panic!("{e:#}"));
        failed.extend(m.must_fail);
    }
    let never: Vec<String> = harness::suites::chapters()
        .iter()
        .flat_map(|c| c.ids())
        .filter(|id| !failed.contains(id) && !NOT_YET_FAILED.contains(&id.as_str()))
        .collect();
    let now_failed: Vec<&&str> = NOT_YET_FAILED
        .iter()
        .filter(|id| failed.contains(**id))
        .collect();
    assert!(
        now_failed.is_empty(),
        "remove these from NOT_YET_FAILED, a twin fails them now: {now_failed:?}"
    );
    assert!(
        never.is_empty(),
        "no gallery entry fails these checks (write a twin that does): {never:?}"
    );
}

/// Each manifest names real checks of its own chapter, sits in its chapter's folder,
/// and is what its origin says: a twin is a base plus `bug.patch`, nothing else has a
/// patch, and a model or student entry must pass.
#[test]
fn every_manifest_is_consistent() {
    let base = root().join("examples/submissions");
    let mut problems = Vec::new();
    for dir in gallery::all_submissions(&root()) {
        let rel = dir
            .strip_prefix(&base)
            .expect("under the gallery")
            .display()
            .to_string();
        let m = gallery::manifest(&dir).unwrap_or_else(|e| panic!("{e:#}"));
        let Some(chapter) = harness::suites::chapter(&m.chapter) else {
            problems.push(format!("{rel}: unknown chapter {}", m.chapter));
            continue;
        };
        if !rel.starts_with(&m.chapter) {
            problems.push(format!(
                "{rel}: filed under another chapter than {}",
                m.chapter
            ));
        }
        for id in &m.must_fail {
            if chapter.check(id).is_none() {
                problems.push(format!(
                    "{rel}: must_fail names {id}, not a check of {}",
                    m.chapter
                ));
            }
        }
        let patch = dir.join("bug.patch").is_file();
        // A twin of a twin (graded under another chapter) carries its base's patch.
        let base_is_twin = m.base.as_ref().is_some_and(|b| {
            gallery::manifest(&dir.join(b)).is_ok_and(|bm| bm.origin == Origin::Twin)
        });
        match m.origin {
            Origin::Twin if m.base.is_none() || !(patch || base_is_twin) => {
                problems.push(format!("{rel}: a twin is a base plus bug.patch"))
            }
            Origin::Model | Origin::Standalone | Origin::Student if patch => {
                problems.push(format!("{rel}: only a twin has a bug.patch"))
            }
            Origin::Model if !m.must_fail.is_empty() => {
                problems.push(format!("{rel}: a model answer must pass (must_fail = [])"))
            }
            _ => {}
        }
        if let Some(b) = &m.base
            && !dir.join(b).join("submission.toml").is_file()
        {
            problems.push(format!("{rel}: base {b} is not a gallery entry"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The "What the checks check" table of each chapter README is the suite's own
/// declarations. With `WORKBOOK_BLESS=1` the tables are rewritten.
#[test]
fn readme_check_tables_match_the_declarations() {
    let mut stale = Vec::new();
    for chapter in harness::suites::chapters() {
        for package in chapter.packages() {
            let path = readme::readme_of(package);
            let text = read(&path);
            let table = readme::checks_table(&root(), &chapter, package);
            let Some(updated) = readme::with_table(&text, &table) else {
                stale.push(format!(
                    "{path}: no generated table (add the markers {} and {})",
                    readme::BEGIN,
                    readme::END
                ));
                continue;
            };
            if updated != text {
                if std::env::var_os("WORKBOOK_BLESS").is_some() {
                    std::fs::write(root().join(&path), updated).expect("write README");
                } else {
                    stale.push(path);
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "check tables out of date (run `WORKBOOK_BLESS=1 cargo test -p harness --test tidy`): {stale:?}"
    );
}

/// Reports show values as escaped bytes or plain words, never Rust's Debug forms
/// (`Some("…")`, `Exited(Pid(12), 0)`): a format string in a suite takes no `:?}` except
/// for durations (`{deadline:.1?}` prints `2.0s`).
#[test]
fn no_debug_formatting_in_suite_messages() {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root().join("tests/src/suites"))
        .expect("suites")
        .flatten()
        .map(|e| e.path())
        .collect();
    for module in [
        "check.rs",
        "peer.rs",
        "grading.rs",
        "report.rs",
        "wording.rs",
    ] {
        files.push(root().join("tests/src").join(module));
    }
    let mut found = Vec::new();
    for path in files.iter().filter(|p| p.is_file()) {
        let text = std::fs::read_to_string(path).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let debug = line.contains(":?}") && !line.contains(".1?}") && !line.contains(".2?}");
            let quoting_a_command_line =
                line.contains("{role_name:?}") || line.contains("{only:?}");
            if debug
                && !quoting_a_command_line
                && !line.trim_start().starts_with("//")
                && !line.contains("panic!")
                && !line.contains("assert")
            {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "Debug formatting in messages:\n{}",
        found.join("\n")
    );
}
