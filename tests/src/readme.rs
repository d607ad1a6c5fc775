//! The parts of the chapter READMEs that are made from the suites' declarations, so
//! that they cannot drift: the table under "What the checks check", between the
//! markers below, lists each check of the crate's roles with its title and the gallery
//! entries that fail it. `tests/tests/tidy.rs` keeps them in step.

use std::path::Path;

use crate::check::Chapter;
use crate::gallery;

pub const BEGIN: &str = "<!-- checks: generated from the suite's declarations; `WORKBOOK_BLESS=1 cargo test -p harness --test tidy` rewrites it -->";
pub const END: &str = "<!-- checks: end -->";

/// The README of a chapter crate, from the repository root.
pub fn readme_of(package: &str) -> String {
    format!("crates/{package}/README.md")
}

/// Every `#`-heading of a Markdown file, without its `#`s.
pub fn headings(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    out
}

/// The table of `chapter`'s checks whose role `package` plays: id, role, title, and the
/// gallery entries (by folder) whose manifest lists the check.
pub fn checks_table(root: &Path, chapter: &Chapter, package: &str) -> String {
    let entries: Vec<(String, Vec<String>)> = gallery::all_submissions(root)
        .into_iter()
        .filter_map(|dir| {
            let m = gallery::manifest(&dir).ok()?;
            let name = format!(
                "{}/{}",
                dir.parent()?.file_name()?.to_string_lossy(),
                dir.file_name()?.to_string_lossy()
            );
            Some((name, m.must_fail))
        })
        .collect();
    let mut out = String::from("| check | role | what it checks | fails it |\n|---|---|---|---|\n");
    for check in &chapter.checks {
        let role = chapter.role(check.role).expect("a check's role exists");
        if role.package != package {
            continue;
        }
        let id = chapter.id_of(check);
        let twins: Vec<String> = entries
            .iter()
            .filter(|(_, fails)| fails.contains(&id))
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        out.push_str(&format!(
            "| `{id}` | {} | {} | {} |\n",
            check.role,
            check.title.replace('|', "\\|"),
            twins.join(", ")
        ));
    }
    out
}

/// `text` with the generated block replaced by `table`; None when the markers are
/// missing.
pub fn with_table(text: &str, table: &str) -> Option<String> {
    let begin = text.find(BEGIN)?;
    let end = text[begin..].find(END)? + begin;
    Some(format!(
        "{}{BEGIN}\n\n{table}\n{}",
        &text[..begin],
        &text[end..]
    ))
}
