//! The one grading path: `cargo xtask check`, `cargo xtask grade` and every conformance
//! test reach their verdicts through [`grade`], which starts the programs, runs each
//! check in a context of its own, ends what it started and returns the [`Record`]s.
//!
//! Before it, [`Targets`] validates a command line's templates: every mistake is found
//! before any check runs (exit 2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::check::{Chapter, Check, Ctx, Settings};
use crate::template::{Template, TemplateError};
use crate::verdict::{Record, Verdict, fail};

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
        let Some(check) = chapter.check(only) else {
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

/// Grades `targets` on `chapter`'s checks (or only `only`), `settings.jobs` at a time,
/// calling `each` as each check's record is final, in the suite's order (so a report can
/// stream). A check whose role has no template is SKIP.
///
/// Checks are independent (each starts its own programs, on ports of its own, in a
/// supervisor of its own), so they run side by side; the records are put in order and
/// finished one after another: failures of one root cause are tied together (a server
/// that died fails every later check: the first says why, the others point back to it),
/// and a note is said once per run, not once per check.
pub fn grade(
    chapter: &Chapter,
    targets: &Targets,
    only: Option<&str>,
    settings: &Settings,
    mut each: impl FnMut(&Record),
) -> Vec<Record> {
    let selected: Vec<&Check> = chapter
        .checks
        .iter()
        .filter(|check| only.is_none_or(|only| only == chapter.id_of(check)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (done, arrived) = std::sync::mpsc::channel::<(usize, Graded)>();
    let mut records: Vec<Record> = Vec::with_capacity(selected.len());
    std::thread::scope(|scope| {
        for _ in 0..settings.jobs.clamp(1, selected.len().max(1)) {
            let done = done.clone();
            let (selected, next) = (&selected, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(check) = selected.get(i) else {
                        return;
                    };
                    let graded = run_check(chapter, check, targets, settings);
                    if done.send((i, graded)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done);
        let mut waiting: BTreeMap<usize, Graded> = BTreeMap::new();
        for (i, graded) in arrived {
            waiting.insert(i, graded);
            while let Some(graded) = waiting.remove(&records.len()) {
                let check = selected[records.len()];
                let record = finish_record(chapter, check, graded, &records);
                each(&record);
                records.push(record);
            }
        }
    });
    records
}

/// A check as it ran, before it is put in its place among the others.
struct Graded {
    verdict: Verdict,
    notes: Vec<String>,
    transcript: Vec<String>,
    duration: std::time::Duration,
    after_mark: Option<std::time::Duration>,
}

/// Runs one check (or skips it when its role has no template), timing it.
fn run_check(chapter: &Chapter, check: &Check, targets: &Targets, settings: &Settings) -> Graded {
    let started = Instant::now();
    let reference_only = chapter.role(check.role).is_some_and(|r| r.reference_only);
    let (verdict, notes, transcript, after_mark) = if targets.templates.contains_key(check.role) {
        grade_one(chapter, check, targets, settings)
    } else if reference_only {
        (
            Verdict::Skip(
                "reference-only: it observes our own programs; run without templates".into(),
            ),
            Vec::new(),
            Vec::new(),
            None,
        )
    } else {
        (
            Verdict::Skip(format!("no template for role {}", check.role)),
            Vec::new(),
            Vec::new(),
            None,
        )
    };
    Graded {
        verdict,
        notes,
        transcript,
        duration: started.elapsed(),
        after_mark,
    }
}

/// A check's record, in the light of the records before it: a note already said is
/// not said again, and a failure of a cause an earlier check met points back to it.
fn finish_record(chapter: &Chapter, check: &Check, graded: Graded, earlier: &[Record]) -> Record {
    let Graded {
        verdict,
        mut notes,
        transcript,
        duration,
        after_mark,
    } = graded;
    notes.retain(|n| !earlier.iter().any(|r| r.notes.contains(n)));
    let same_cause_as = match &verdict {
        Verdict::Fail(e) => e.cause.as_ref().and_then(|cause| {
            earlier.iter().find_map(|r| match &r.verdict {
                Verdict::Fail(first)
                    if r.same_cause_as.is_none() && first.cause.as_ref() == Some(cause) =>
                {
                    Some(r.id.clone())
                }
                _ => None,
            })
        }),
        _ => None,
    };
    Record {
        id: chapter.id_of(check),
        title: check.title,
        role: check.role,
        hint: check.hint(),
        duration,
        after_stated_deadline_began: after_mark,
        verdict,
        notes,
        transcript,
        same_cause_as,
    }
}

/// Runs one check in a context and supervisor of its own, then ends every process it
/// started. A process that survives the end, or a port still held, fails the check.
fn grade_one(
    chapter: &Chapter,
    check: &Check,
    targets: &Targets,
    settings: &Settings,
) -> (
    Verdict,
    Vec<String>,
    Vec<String>,
    Option<std::time::Duration>,
) {
    let mut ctx = match Ctx::new(chapter, check, &targets.templates, settings) {
        Ok(ctx) => ctx,
        Err(e) => {
            return (
                Verdict::from(Err(fail(format!("could not set up the check: {e:#}")))),
                Vec::new(),
                Vec::new(),
                None,
            );
        }
    };
    let outcome = (check.run)(&mut ctx);
    let verdict = ctx.conclude(outcome);
    let leftovers = ctx.sup.finish();
    let verdict = match verdict {
        Verdict::Pass if !leftovers.is_empty() => Verdict::from(Err(fail(leftovers.join("; ")))),
        other => other,
    };
    let after_mark = ctx.deadline_mark.map(|m| m.elapsed());
    (
        verdict,
        std::mem::take(&mut ctx.notes),
        ctx.recorder.take(),
        after_mark,
    )
}
