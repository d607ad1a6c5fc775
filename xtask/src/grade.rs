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
use harness::runner::{CheckResult, Status, Targets, run_chapter};
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

/// A member's templates and build for the chapter, from either manifest.
struct Member {
    name: String,
    dir: PathBuf,
    build: Vec<String>,
    roles: Option<BTreeMap<String, String>>,
}

/// How a member's grading ended.
pub enum Graded {
    Results(Vec<CheckResult>),
    NotGraded(String),
}

fn members(dir: &Path, chapter: &str) -> anyhow::Result<Vec<Member>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.join("workbook.toml").is_file() {
            let text = std::fs::read_to_string(path.join("workbook.toml"))?;
            let wb: Workbook = toml::from_str(&text)
                .with_context(|| format!("parse {}/workbook.toml", path.display()))?;
            out.push(Member {
                name,
                dir: path,
                build: wb.build,
                roles: wb.chapters.get(chapter).cloned(),
            });
        } else if path.join("submission.toml").is_file() {
            let m = harness::gallery::manifest(&path)?;
            let roles = (m.chapter == chapter).then_some(m.roles);
            out.push(Member {
                name,
                dir: path,
                build: m.build,
                roles,
            });
        }
    }
    Ok(out)
}

fn grade_member(
    member: &Member,
    chapter: &Chapter,
    settings: &Settings,
    build_limit: Duration,
) -> Graded {
    let Some(roles) = &member.roles else {
        return Graded::NotGraded(format!(
            "no [{}] templates in its workbook.toml",
            chapter.id
        ));
    };
    let build_dir = match tempfile::Builder::new().prefix("workbook-grade-").tempdir() {
        Ok(d) => d,
        Err(e) => return Graded::NotGraded(format!("temporary directory: {e}")),
    };
    if let Err(e) = harness::gallery::copy_dir(&member.dir, build_dir.path()) {
        return Graded::NotGraded(format!("copy: {e:#}"));
    }
    for command in &member.build {
        if let Err(e) = harness::gallery::build_step(command, build_dir.path(), build_limit) {
            let first = format!("{e:#}");
            return Graded::NotGraded(format!(
                "build failed: {}",
                first.lines().take(3).collect::<Vec<_>>().join(" / ")
            ));
        }
    }
    match Targets::given(chapter, roles, build_dir.path(), None, false) {
        Ok(targets) => Graded::Results(run_chapter(chapter, &targets, None, settings, |_| {})),
        Err(e) => Graded::NotGraded(format!("template: {e}")),
    }
}

fn cell(status: Status) -> &'static str {
    status.label()
}

pub fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let Some(chapter) = harness::suites::chapter(&args.chapter) else {
        eprintln!("error: unknown chapter {:?}", args.chapter);
        return Ok(ExitCode::from(2));
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
    crate::check::raise_fd_limit();
    let settings = Settings {
        timeout: args.timeout,
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
    let graded: Mutex<Vec<Option<Graded>>> = Mutex::new(members.iter().map(|_| None).collect());
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
    let graded: Vec<Graded> = graded
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
            let results = match g {
                Graded::Results(r) => r.clone(),
                Graded::NotGraded(_) => Vec::new(),
            };
            let mut suite = crate::formats::junit_suite(chapter.id, &results);
            if let Graded::NotGraded(why) = g {
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
                crate::formats::junit(name, vec![suite])?,
            )?;
        }
        eprintln!(
            "wrote {}/results.md, results.csv and junit/*.xml",
            out.display()
        );
    }
    let all_ok = graded
        .iter()
        .all(|g| matches!(g, Graded::Results(r) if r.iter().all(|c| c.status != Status::Fail)));
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Short column names: the check's name without its chapter.
fn short(id: &str) -> &str {
    id.split_once('/').map_or(id, |(_, n)| n)
}

fn counts(g: &Graded) -> (usize, usize, usize) {
    match g {
        Graded::Results(r) => (
            r.iter().filter(|c| c.status == Status::Pass).count(),
            r.iter().filter(|c| c.status == Status::Fail).count(),
            r.iter().filter(|c| c.status == Status::Skip).count(),
        ),
        Graded::NotGraded(_) => (0, 0, 0),
    }
}

fn rows(chapter: &Chapter, names: &[String], graded: &[Graded]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["member".to_string()];
    header.extend(chapter.checks.iter().map(|c| short(&c.id).to_string()));
    header.extend(["passed", "failed", "skipped", "note"].map(String::from));
    let rows = names
        .iter()
        .zip(graded)
        .map(|(name, g)| {
            let mut row = vec![name.clone()];
            match g {
                Graded::Results(results) => {
                    for check in &chapter.checks {
                        let status = results
                            .iter()
                            .find(|r| r.id == check.id)
                            .map_or("-", |r| cell(r.status));
                        row.push(status.to_string());
                    }
                }
                Graded::NotGraded(_) => row.extend(chapter.checks.iter().map(|_| "-".to_string())),
            }
            let (p, f, s) = counts(g);
            row.extend([p.to_string(), f.to_string(), s.to_string()]);
            row.push(match g {
                Graded::NotGraded(why) => why.clone(),
                Graded::Results(_) => String::new(),
            });
            row
        })
        .collect();
    (header, rows)
}

/// The table as aligned text.
pub fn table_text(chapter: &Chapter, names: &[String], graded: &[Graded]) -> String {
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

fn table_markdown(chapter: &Chapter, names: &[String], graded: &[Graded]) -> String {
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

fn table_csv(chapter: &Chapter, names: &[String], graded: &[Graded]) -> String {
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
