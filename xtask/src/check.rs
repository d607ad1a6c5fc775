//! `cargo xtask check <chapter>`: one chapter's suite against our binaries, the
//! templates given, or a submission folder, graded by `harness::grading::grade`, the
//! path the conformance tests take too.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use harness::check::{Chapter, Settings};
use harness::grading::{Targets, grade};
use harness::report::{self, Colour};
use harness::verdict::Tally;

use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Chapter to check: ch01, ch04, ... (see `cargo xtask list`)
    chapter: String,
    /// Template for the server role, e.g. './echo_server {port}'
    #[arg(long, value_name = "TEMPLATE")]
    server: Option<String>,
    /// Template for the client role, e.g. './echo_client {host} {port}'
    #[arg(long, value_name = "TEMPLATE")]
    client: Option<String>,
    /// Template for any role: NAME=TEMPLATE, e.g. calc-client='./op_client {host} {port}'
    #[arg(long = "role", value_name = "NAME=TEMPLATE")]
    roles: Vec<String>,
    /// A folder to build and grade: a member's folder with a workbook.toml, or a gallery
    /// entry with a submission.toml (instead of templates)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["server", "client", "roles"])]
    submission: Option<std::path::PathBuf>,
    /// Run only this check, e.g. ch04/large-message
    #[arg(long, value_name = "ID")]
    only: Option<String>,
    /// Multiply every deadline by this factor (for a slow or busy machine)
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    timeout: f64,
    /// Report format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Add every byte sent and received to the text report
    #[arg(long)]
    verbose: bool,
    /// How many checks run at once (each starts its own programs on ports of its own)
    #[arg(long, default_value_t = harness::check::DEFAULT_JOBS, value_name = "N")]
    jobs: usize,
    /// Run the checks in a private network namespace (no root needed) whose loopback is
    /// captured: a failing check's evidence shows the TCP segments and UDP datagrams of
    /// its connections
    #[arg(long)]
    pub wire: bool,
}

/// Which form the report takes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Junit,
}

/// A mistake on the command line: one line, exit 2, before any check runs.
pub fn usage_error(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(2))
}

/// The chapter named on the command line, or the one-line error that lists them.
pub fn chapter_named(name: &str) -> Result<Chapter, String> {
    harness::suites::chapter(name).ok_or_else(|| {
        let known: Vec<&str> = harness::suites::chapters().iter().map(|c| c.id).collect();
        format!(
            "unknown chapter {name:?}; the chapters are {}",
            known.join(", ")
        )
    })
}

/// Whether the text report may use colour: stdout is a terminal and NO_COLOR is unset.
fn colour_allowed() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let chapter = match chapter_named(&args.chapter) {
        Ok(chapter) => chapter,
        Err(e) => return usage_error(e),
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return usage_error(format!(
            "--timeout must be a positive factor, not {}",
            args.timeout
        ));
    }
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    if let Some(t) = args.server {
        given.insert("server".into(), t);
    }
    if let Some(t) = args.client {
        given.insert("client".into(), t);
    }
    for pair in &args.roles {
        let Some((name, template)) = pair.split_once('=') else {
            return usage_error(format!("--role takes NAME=TEMPLATE, not {pair:?}"));
        };
        if given
            .insert(name.to_string(), template.to_string())
            .is_some()
        {
            return usage_error(format!("role {name} was given twice"));
        }
    }

    // Kept alive until grading ends: the folder a submission was built in.
    let mut _built = None;
    let targets = if let Some(dir) = &args.submission {
        let member = match crate::grade::Member::read(dir, chapter.id) {
            Ok(member) => member,
            Err(e) => return usage_error(format!("{e:#}")),
        };
        let Some(roles) = member.roles.clone() else {
            return usage_error(format!(
                "{} has no templates for {}",
                dir.display(),
                chapter.id
            ));
        };
        let built = match member.build(std::time::Duration::from_secs(300)) {
            Ok(built) => built,
            Err(e) => return usage_error(e),
        };
        let twin = member.is_gallery_entry;
        match Targets::given(&chapter, &roles, built.path(), args.only.as_deref(), twin) {
            Ok(targets) => {
                _built = Some(built);
                targets
            }
            Err(e) => return usage_error(e),
        }
    } else if given.is_empty() {
        // Check --only against placeholder paths first: a typo must not wait for a build.
        let placeholders = chapter
            .packages()
            .into_iter()
            .map(|p| (p.to_string(), std::path::PathBuf::new()))
            .collect();
        let only_ok = args.only.as_deref().map_or(Ok(()), |only| {
            Targets::reference(&chapter, &placeholders).check_only(&chapter, only)
        });
        if let Err(e) = only_ok {
            return usage_error(e);
        }
        let mut binaries = BTreeMap::new();
        for package in chapter.packages() {
            binaries.insert(package.to_string(), crate::cargo::binary_of(package)?);
        }
        Targets::reference(&chapter, &binaries)
    } else {
        let base = std::env::current_dir().context("find the current directory")?;
        match Targets::given(&chapter, &given, &base, args.only.as_deref(), false) {
            Ok(targets) => targets,
            Err(e) => return usage_error(e),
        }
    };

    if args.wire {
        // Built and validated: now the network the checks run in, before any thread.
        if let Err(why) = harness::wire::start() {
            eprintln!("{why}");
        }
        crate::end_checks_on_interrupt();
    }
    harness::launch::raise_own_open_file_limit();
    let settings = Settings {
        deadline_factor: args.timeout,
        verbose: args.verbose,
        jobs: args.jobs.max(1),
        ..Settings::default()
    };
    // Text goes out as each check ends, unless it is going to a file.
    let stream = args.format == Format::Text && args.output.is_none();
    let colour = if stream && colour_allowed() {
        Colour::Ansi
    } else {
        Colour::Never
    };
    let mut out = Out::stdout();
    let records = grade(
        &chapter,
        &targets,
        args.only.as_deref(),
        &settings,
        |record| {
            if stream {
                out.print(&report::text(record, colour));
            }
        },
    );
    let tally = Tally::of(&records);
    let text = match args.format {
        Format::Text if stream => format!("{tally}\n"),
        Format::Text => report::text_report(&records, Colour::Never),
        Format::Json => {
            let templates: BTreeMap<String, String> = targets
                .templates
                .iter()
                .map(|(k, t)| (k.clone(), t.source.clone()))
                .collect();
            serde_json::to_string_pretty(&report::json(chapter.id, &templates, &records))? + "\n"
        }
        Format::Junit => report::junit(
            "cargo xtask check",
            vec![report::junit_suite(chapter.id, &records)],
        )?,
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
            eprintln!("{tally} (report written to {})", path.display());
        }
        None => out.print(&text),
    }
    Ok(if tally.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
