//! What each chapter's `tests/conformance.rs` calls: our binary must pass its suite,
//! and each broken twin must fail exactly the checks its manifest names.

use std::path::Path;

use crate::check::Settings;
use crate::gallery::{self, NotGraded};
use crate::report;
use crate::runner::{Status, Targets, run_chapter, summary};

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
    let settings = Settings::default();
    let results = run_chapter(&chapter, &targets, None, &settings, |_| {});
    let mut text = String::new();
    for r in &results {
        text.push_str(&report::check_line(r));
        text.push('\n');
        text.push_str(&report::details(r));
    }
    println!("{text}{}", summary(&results));
    let bad: Vec<&str> = results
        .iter()
        .filter(|r| targets.templates.contains_key(r.role) && r.status != Status::Pass)
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "our {} binary did not pass {bad:?}:\n{text}",
        chapter.id
    );
}

/// Grades `examples/submissions/<path>` and panics unless the checks that fail are
/// exactly those its manifest lists in `must_fail`.
pub fn assert_submission(path: &str) {
    let dir = crate::repo_root().join("examples/submissions").join(path);
    let settings = Settings::default();
    let graded = match gallery::grade(&dir, &settings) {
        Ok(graded) => graded,
        Err(NotGraded::MissingTool(why)) if !settings.ci => {
            println!("SKIP: {why}");
            return;
        }
        Err(NotGraded::MissingTool(why)) => panic!("{why} (CI=true: a missing tool fails)"),
        Err(NotGraded::Error(e)) => panic!("{e:#}"),
    };
    let mut text = String::new();
    for r in &graded.results {
        text.push_str(&report::check_line(r));
        text.push('\n');
        text.push_str(&report::details(r));
    }
    println!("{text}");
    let mut expected = graded.manifest.must_fail.clone();
    expected.sort();
    assert_eq!(
        graded.failed(),
        expected,
        "{path} ({}) must fail exactly its manifest's checks:\n{text}",
        graded.manifest.about
    );
}
