//! `cargo xtask check <chapter>`: one chapter's suite against our binaries or the
//! templates given.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use harness::check::Settings;
use harness::runner::{Status, Targets, run_chapter, summary};

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
    /// Run only this check, e.g. ch04/large-message
    #[arg(long, value_name = "ID")]
    only: Option<String>,
    /// Multiply every deadline by this factor (for a slow or busy machine)
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    timeout: f64,
    /// Report format
    #[arg(long, value_enum, default_value_t = crate::formats::Format::Text)]
    format: crate::formats::Format,
    /// Write the report to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Add every byte sent and received to the text report
    #[arg(long)]
    verbose: bool,
}

/// A mistake on the command line: one line, exit 2, before any check runs.
fn usage_error(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(2))
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let Some(chapter) = harness::suites::chapter(&args.chapter) else {
        let known: Vec<&str> = harness::suites::chapters()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>();
        return usage_error(format!(
            "unknown chapter {:?}; the chapters are {}",
            args.chapter,
            known.join(", ")
        ));
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

    let targets = if given.is_empty() {
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

    raise_fd_limit();
    let settings = Settings {
        timeout: args.timeout,
        verbose: args.verbose,
        ..Settings::default()
    };
    use crate::formats::{Format, colour_allowed, json, junit, junit_suite, text_for};
    // Text goes out as each check ends, unless it is going to a file.
    let stream = args.format == Format::Text && args.output.is_none();
    let colour = stream && colour_allowed();
    let results = run_chapter(
        &chapter,
        &targets,
        args.only.as_deref(),
        &settings,
        |result| {
            if stream {
                print!("{}", text_for(result, colour));
            }
        },
    );
    let report = match args.format {
        Format::Text if stream => {
            println!("{}", summary(&results));
            None
        }
        Format::Text => Some(
            results
                .iter()
                .map(|r| text_for(r, false))
                .collect::<String>()
                + &summary(&results)
                + "\n",
        ),
        Format::Json => {
            let templates: BTreeMap<String, String> = targets
                .templates
                .iter()
                .map(|(k, t)| (k.clone(), t.source.clone()))
                .collect();
            Some(serde_json::to_string_pretty(&json(chapter.id, &templates, &results))? + "\n")
        }
        Format::Junit => Some(junit(
            "cargo xtask check",
            vec![junit_suite(chapter.id, &results)],
        )?),
    };
    if let Some(report) = report {
        match &args.output {
            Some(path) => {
                std::fs::write(path, report)
                    .with_context(|| format!("write {}", path.display()))?;
                eprintln!(
                    "{} (report written to {})",
                    summary(&results),
                    path.display()
                );
            }
            None => print!("{report}"),
        }
    }
    let failed = results.iter().any(|r| r.status == Status::Fail);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Raises the open-file soft limit to the hard limit: checks with many connections
/// need more descriptors than the usual soft limit of 1024.
pub fn raise_fd_limit() {
    let _ = syscalls::multiplex::raise_open_file_limit();
}
