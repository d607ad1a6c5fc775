//! `cargo xtask grade <dir> --chapter chNN`: the whole study group at once.
//!
//! `<dir>` holds one folder per member. Each has a `workbook.toml`:
//!
//! ```toml
//! build = ["make"]                 # optional: commands run in a copy of the folder, no shell
//!
//! [ch04]
//! server = "./echo_server {port}"
//! client = "./echo_client {host} {port}"
//! ```
//!
//! (A gallery folder's `submission.toml` is read too, so the gallery can be graded as a
//! group.) Members are built with a time limit and graded in parallel, up to the number
//! of CPUs; one member's broken build or hung program never stops the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use harness::check::{Chapter, Settings};
use harness::grading::{Targets, grade};
use harness::report;
use harness::verdict::{Record, Tally};
use serde::Deserialize;

#[derive(clap::Args, Debug)]
pub struct GradeArgs {
    /// The folder with one folder per member
    dir: PathBuf,
    /// The chapter to grade: ch04, ...
    #[arg(long)]
    chapter: String,
    /// Also write results.md, results.csv and junit/<member>.xml here
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Members graded at once (default: the number of CPUs)
    #[arg(long)]
    jobs: Option<usize>,
    /// Longest a member's build may take, in seconds
    #[arg(long, default_value_t = 300)]
    build_timeout: u64,
    /// Multiply every check's deadline by this factor
    #[arg(long, default_value_t = 1.0)]
    timeout: f64,
}

/// A member's `workbook.toml`.
#[derive(Debug, Deserialize)]
struct Workbook {
    #[serde(default)]
    build: Vec<String>,
    #[serde(flatten)]
    chapters: BTreeMap<String, BTreeMap<String, String>>,
}

/// A member's folder, from either manifest: its templates for the chapter and how to
/// build it.
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    /// The member's templates for the chapter; None when it has none.
    pub roles: Option<BTreeMap<String, String>>,
    /// A gallery entry (`submission.toml`): built as the gallery builds it (a twin's
    /// base and patch), and allowed to stand in for reference-only roles.
    pub is_gallery_entry: bool,
    build: Vec<String>,
}

impl Member {
    /// Reads `dir`'s `workbook.toml`, or its `submission.toml`, for `chapter`.
    pub fn read(dir: &Path, chapter: &str) -> anyhow::Result<Member> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        if dir.join("workbook.toml").is_file() {
            let path = dir.join("workbook.toml");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            let wb: Workbook =
                toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
            return Ok(Member {
                name,
                dir: dir.to_path_buf(),
                roles: wb.chapters.get(chapter).cloned(),
                is_gallery_entry: false,
                build: wb.build,
            });
        }
        if dir.join("submission.toml").is_file() {
            let m = harness::gallery::manifest(dir)?;
            return Ok(Member {
                name,
                dir: dir.to_path_buf(),
                roles: (m.chapter == chapter).then_some(m.roles),
                is_gallery_entry: true,
                build: Vec::new(),
            });
        }
        anyhow::bail!(
            "{} has neither a workbook.toml nor a submission.toml",
            dir.display()
        )
    }

    /// Builds a copy of the member's folder in a temporary folder, within `limit` per
    /// command. The error is one line for a report.
    pub fn build(&self, limit: Duration) -> Result<tempfile::TempDir, String> {
        if self.is_gallery_entry {
            return match harness::gallery::build(&self.dir) {
                Ok(built) => Ok(built.dir),
                Err(harness::gallery::BuildError::MissingTool(why)) => Err(why),
                Err(harness::gallery::BuildError::Failed(e)) => Err(first_lines(&e)),
            };
        }
        let dir = tempfile::Builder::new()
            .prefix("workbook-grade-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        harness::gallery::copy_dir(&self.dir, dir.path()).map_err(|e| format!("copy: {e:#}"))?;
        for command in &self.build {
            harness::gallery::build_step(command, dir.path(), limit)
                .map_err(|e| format!("build failed: {}", first_lines(&e)))?;
        }
        Ok(dir)
    }
}

fn first_lines(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// How a member's grading ended.
pub enum MemberResult {
    Graded(Vec<Record>),
    NotGraded(String),
}

fn members(dir: &Path, chapter: &str) -> anyhow::Result<Vec<Member>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.path().join("workbook.toml").is_file() || e.path().join("submission.toml").is_file()
        })
        .collect();
    entries.sort_by_key(|e| e.file_name());
    entries
        .iter()
        .map(|e| Member::read(&e.path(), chapter))
        .collect()
}

fn grade_member(
    member: &Member,
    chapter: &Chapter,
    settings: &Settings,
    build_limit: Duration,
) -> MemberResult {
    let Some(roles) = &member.roles else {
        return MemberResult::NotGraded(format!(
            "no [{}] templates in its workbook.toml",
            chapter.id
        ));
    };
    let built = match member.build(build_limit) {
        Ok(built) => built,
        Err(why) => return MemberResult::NotGraded(why),
    };
    match Targets::given(chapter, roles, built.path(), None, member.is_gallery_entry) {
        Ok(targets) => MemberResult::Graded(grade(chapter, &targets, None, settings, |_| {})),
        Err(e) => MemberResult::NotGraded(format!("template: {e}")),
    }
}

pub fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let chapter = match crate::check::chapter_named(&args.chapter) {
        Ok(chapter) => chapter,
        Err(e) => return crate::check::usage_error(e),
    };
    if !args.dir.is_dir() {
        eprintln!("error: {} is not a folder", args.dir.display());
        return Ok(ExitCode::from(2));
    }
    let members = members(&args.dir, chapter.id)?;
    if members.is_empty() {
        eprintln!(
            "error: no member folder with a workbook.toml in {}",
            args.dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    harness::launch::raise_own_open_file_limit();
    let settings = Settings {
        deadline_factor: args.timeout,
        ..Settings::default()
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let queue = Mutex::new(members.iter().enumerate());
    let graded: Mutex<Vec<Option<MemberResult>>> =
        Mutex::new(members.iter().map(|_| None).collect());
    let build_limit = Duration::from_secs(args.build_timeout);
    eprintln!("grading {} members, {jobs} at a time ...", members.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(members.len()) {
            scope.spawn(|| {
                loop {
                    let Some((i, member)) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    let result = grade_member(member, &chapter, &settings, build_limit);
                    eprintln!("  {} done", member.name);
                    graded.lock().expect("results")[i] = Some(result);
                }
            });
        }
    });
    let graded: Vec<MemberResult> = graded
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|g| g.expect("every member graded"))
        .collect();
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();

    print!("{}", table_text(&chapter, &names, &graded));
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out.join("junit"))
            .with_context(|| format!("create {}", out.display()))?;
        std::fs::write(
            out.join("results.md"),
            table_markdown(&chapter, &names, &graded),
        )?;
        std::fs::write(
            out.join("results.csv"),
            table_csv(&chapter, &names, &graded),
        )?;
        for (name, g) in names.iter().zip(&graded) {
            let records = match g {
                MemberResult::Graded(r) => r.clone(),
                MemberResult::NotGraded(_) => Vec::new(),
            };
            let mut suite = report::junit_suite(chapter.id, &records);
            if let MemberResult::NotGraded(why) = g {
                let mut status =
                    quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Error);
                status.set_message(why.clone());
                suite.add_test_case(quick_junit::TestCase::new(
                    format!("{}/build", chapter.id),
                    status,
                ));
            }
            std::fs::write(
                out.join("junit").join(format!("{name}.xml")),
                report::junit(name, vec![suite])?,
            )?;
        }
        eprintln!(
            "wrote {}/results.md, results.csv and junit/*.xml",
            out.display()
        );
    }
    let all_ok = graded
        .iter()
        .all(|g| matches!(g, MemberResult::Graded(r) if Tally::of(r).all_passed()));
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn counts(g: &MemberResult) -> Tally {
    match g {
        MemberResult::Graded(r) => Tally::of(r),
        MemberResult::NotGraded(_) => Tally::default(),
    }
}

fn rows(
    chapter: &Chapter,
    names: &[String],
    graded: &[MemberResult],
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["member".to_string()];
    header.extend(chapter.checks.iter().map(|c| c.name.to_string()));
    header.extend(["passed", "failed", "skipped", "note"].map(String::from));
    let rows = names
        .iter()
        .zip(graded)
        .map(|(name, g)| {
            let mut row = vec![name.clone()];
            match g {
                MemberResult::Graded(records) => {
                    for id in chapter.ids() {
                        let status = records
                            .iter()
                            .find(|r| r.id == id)
                            .map_or("-", |r| r.verdict.label());
                        row.push(status.to_string());
                    }
                }
                MemberResult::NotGraded(_) => {
                    row.extend(chapter.checks.iter().map(|_| "-".to_string()))
                }
            }
            let t = counts(g);
            row.extend([
                t.passed.to_string(),
                t.failed.to_string(),
                t.skipped.to_string(),
            ]);
            row.push(match g {
                MemberResult::NotGraded(why) => why.clone(),
                MemberResult::Graded(_) => String::new(),
            });
            row
        })
        .collect();
    (header, rows)
}

/// The table as aligned text.
pub fn table_text(chapter: &Chapter, names: &[String], graded: &[MemberResult]) -> String {
    let (header, rows) = rows(chapter, names, graded);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header[i])
                .chain(rows.iter().map(|r| &r[i]))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

fn table_markdown(chapter: &Chapter, names: &[String], graded: &[MemberResult]) -> String {
    let (header, rows) = rows(chapter, names, graded);
    let mut out = format!(
        "# {}: {}\n\n| {} |\n|{}|\n",
        chapter.id,
        chapter.title,
        header.join(" | "),
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

fn table_csv(chapter: &Chapter, names: &[String], graded: &[MemberResult]) -> String {
    let (header, rows) = rows(chapter, names, graded);
    let esc = |s: &String| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.clone()
        }
    };
    std::iter::once(header)
        .chain(rows)
        .map(|r| r.iter().map(esc).collect::<Vec<_>>().join(",") + "\n")
        .collect()
}
