//! Running a chapter's suite against targets, and the checks that come before it:
//! every mistake in the command line is found before any check runs (exit 2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::check::{Chapter, Ctx, Failure, Problem, Settings};
use crate::template::{Template, TemplateError};

/// PASS, FAIL or SKIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check's result, for reports.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub id: String,
    pub title: &'static str,
    pub role: &'static str,
    pub status: Status,
    pub duration: Duration,
    pub failure: Option<Failure>,
    pub skip_reason: Option<String>,
    pub hint: &'static str,
    /// With `--verbose`: every byte sent and received, in order.
    pub transcript: Vec<String>,
    /// Things worth saying that are not failures.
    pub notes: Vec<String>,
}

/// The templates to grade, by role: our reference binaries, or what the user gave.
/// A check runs when its role has a template and is SKIP otherwise.
#[derive(Debug, Clone)]
pub struct Targets {
    pub templates: BTreeMap<String, Template>,
}

impl Targets {
    /// The roles of `chapter` whose package has a binary in `binaries` (package name to
    /// path), each played by that binary.
    pub fn reference(
        chapter: &Chapter,
        binaries: &BTreeMap<String, std::path::PathBuf>,
    ) -> Targets {
        let templates = chapter
            .roles
            .iter()
            .filter_map(|role| {
                let binary = binaries.get(role.package)?;
                let mut words = vec![binary.to_string_lossy().into_owned()];
                words.extend(role.reference.iter().map(|w| w.to_string()));
                Some((role.name.to_string(), Template::from_words(words)))
            })
            .collect();
        Targets { templates }
    }

    /// The user's templates (`role -> template source`), parsed against `base` and
    /// validated. An error is one line saying what to fix: exit 2 before any check.
    ///
    /// Reference-only roles are refused unless `twin_of_reference` (the gallery's
    /// broken twins of our own demos, which prove that those checks can fail).
    pub fn given(
        chapter: &Chapter,
        given: &BTreeMap<String, String>,
        base: &Path,
        only: Option<&str>,
        twin_of_reference: bool,
    ) -> Result<Targets, TemplateError> {
        let mut templates = BTreeMap::new();
        for (role_name, source) in given {
            let Some(role) = chapter.role(role_name) else {
                let roles: Vec<&str> = chapter.roles.iter().map(|r| r.name).collect();
                return Err(TemplateError(format!(
                    "chapter {} has no role {role_name:?}; its roles are {} (see `cargo xtask list`)",
                    chapter.id,
                    roles.join(", ")
                )));
            };
            if role.reference_only && !twin_of_reference {
                return Err(TemplateError(format!(
                    "role {role_name} of chapter {} is reference-only: its checks observe our own programs; run `cargo xtask check {}` without templates",
                    chapter.id, chapter.id
                )));
            }
            let template = Template::parse(source, base)?;
            template.validate(role.name, role.required, role.allowed)?;
            if !chapter.checks.iter().any(|c| c.role == role.name) {
                return Err(TemplateError(format!(
                    "no check of chapter {} tests role {}",
                    chapter.id, role.name
                )));
            }
            templates.insert(role_name.clone(), template);
        }
        let targets = Targets { templates };
        if let Some(only) = only {
            targets.check_only(chapter, only)?;
        }
        Ok(targets)
    }

    /// With `--only ID`: the id exists and a template covers its role.
    pub fn check_only(&self, chapter: &Chapter, only: &str) -> Result<(), TemplateError> {
        let Some(check) = chapter.checks.iter().find(|c| c.id == only) else {
            return Err(TemplateError(format!(
                "chapter {} has no check {only:?} (see `cargo xtask list`)",
                chapter.id
            )));
        };
        let role = chapter.role(check.role).expect("a check's role exists");
        if self.templates.contains_key(check.role) {
            Ok(())
        } else if role.reference_only {
            Err(TemplateError(format!(
                "check {only} observes our own programs (reference-only); run it without templates"
            )))
        } else {
            Err(TemplateError(format!(
                "check {only} tests role {}, but no template was given for it (--role {}='...')",
                check.role, check.role
            )))
        }
    }
}

/// Runs `chapter`'s checks (or only `only`) against `targets`, one after another,
/// calling `each` as each check ends (so a report can stream).
pub fn run_chapter(
    chapter: &Chapter,
    targets: &Targets,
    only: Option<&str>,
    settings: &Settings,
    mut each: impl FnMut(&CheckResult),
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for check in &chapter.checks {
        if only.is_some_and(|only| only != check.id) {
            continue;
        }
        let started = Instant::now();
        if settings.verbose {
            crate::peer::transcript::start();
        }
        let reference_only = chapter.role(check.role).is_some_and(|r| r.reference_only);
        let mut notes = Vec::new();
        let outcome = if targets.templates.contains_key(check.role) {
            run_one(chapter, check, targets, settings, &mut notes)
        } else if reference_only {
            Err(Problem::Skip(
                "reference-only: it observes our own programs; run without templates".into(),
            ))
        } else {
            Err(Problem::Skip(format!(
                "no template for role {}",
                check.role
            )))
        };
        let (status, failure, skip_reason) = match outcome {
            Ok(()) => (Status::Pass, None, None),
            Err(Problem::Fail(f)) => (Status::Fail, Some(*f), None),
            Err(Problem::Skip(why)) => (Status::Skip, None, Some(why)),
        };
        let result = CheckResult {
            id: check.id.clone(),
            title: check.title,
            role: check.role,
            status,
            duration: started.elapsed(),
            failure,
            skip_reason,
            hint: check.hint,
            transcript: if settings.verbose {
                crate::peer::transcript::take()
            } else {
                Vec::new()
            },
            notes,
        };
        each(&result);
        results.push(result);
    }
    results
}

/// Runs one check in its own supervisor, then ends every process it started. A
/// process that survives the end, or a port still held, fails the check.
fn run_one(
    chapter: &Chapter,
    check: &crate::check::Check,
    targets: &Targets,
    settings: &Settings,
    notes: &mut Vec<String>,
) -> Result<(), Problem> {
    let mut ctx = match Ctx::new(chapter, check, &targets.templates, settings) {
        Ok(ctx) => ctx,
        Err(e) => {
            return Err(crate::check::fail(format!(
                "could not set up the check: {e:#}"
            )));
        }
    };
    let outcome = (check.run)(&mut ctx);
    notes.append(&mut ctx.notes);
    // The last lines of stderr of the program under test: evidence for a failure.
    let stderr = ctx.sup.spawned_stderr_tail(5);
    let leftovers = ctx.sup.finish();
    match outcome {
        Err(Problem::Fail(mut failure)) => {
            if failure.stderr.is_none() && !stderr.trim().is_empty() {
                failure.stderr = Some(stderr);
            }
            Err(Problem::Fail(failure))
        }
        Ok(()) if !leftovers.is_empty() => Err(crate::check::fail(leftovers.join("; "))),
        other => other,
    }
}

/// `N passed, M failed, K skipped`.
pub fn summary(results: &[CheckResult]) -> String {
    let count = |s| results.iter().filter(|r| r.status == s).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    )
}
