//! The check report in three forms: text for a person (colour only on a terminal, never
//! with NO_COLOR), JSON for programs, JUnit for CI systems.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use harness::check::Failure;
use harness::report::{SHOWN_BYTES, escape};
use harness::runner::{CheckResult, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// Which form.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Junit,
}

/// Whether the text report may use colour: stdout is a terminal and NO_COLOR is unset.
pub fn colour_allowed() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(text: &str, status: Status, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "31;1",
        Status::Skip => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// One check's line and details, as the text report prints them.
pub fn text_for(result: &CheckResult, colour: bool) -> String {
    let line = harness::report::check_line(result);
    let label = result.status.label();
    let line = line.replacen(label, &paint(label, result.status, colour), 1);
    format!("{line}\n{}", harness::report::details(result))
}

fn failure_text(f: &Failure) -> String {
    let mut out = f.message.clone();
    if let Some(sent) = &f.sent {
        out.push_str(&format!("\nsent:     {}", escape(sent, SHOWN_BYTES)));
    }
    if let Some(expected) = &f.expected {
        out.push_str(&format!("\nexpected: {expected}"));
    }
    if let Some(got) = &f.got {
        out.push_str(&format!("\ngot:      {}", escape(got, SHOWN_BYTES)));
    }
    if let Some(stderr) = &f.stderr {
        out.push_str(&format!("\nits stderr ended with:\n{stderr}"));
    }
    out
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Skip => "skip",
    }
}

/// The JSON report: one object with the chapter, the templates and every check.
pub fn json(
    chapter: &str,
    templates: &BTreeMap<String, String>,
    results: &[CheckResult],
) -> serde_json::Value {
    let count = |s| results.iter().filter(|r| r.status == s).count();
    serde_json::json!({
        "chapter": chapter,
        "templates": templates,
        "checks": results.iter().map(|r| serde_json::json!({
            "id": r.id,
            "title": r.title,
            "role": r.role,
            "status": status_word(r.status),
            "duration_ms": (r.duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            "message": r.failure.as_ref().map(|f| f.message.clone()).or_else(|| r.skip_reason.clone()),
            "sent": r.failure.as_ref().and_then(|f| f.sent.as_ref()).map(|b| escape(b, SHOWN_BYTES)),
            "expected": r.failure.as_ref().and_then(|f| f.expected.clone()),
            "got": r.failure.as_ref().and_then(|f| f.got.as_ref()).map(|b| escape(b, SHOWN_BYTES)),
            "stderr": r.failure.as_ref().and_then(|f| f.stderr.clone()),
            "hint": (r.status == Status::Fail).then_some(r.hint),
        })).collect::<Vec<_>>(),
        "summary": { "passed": count(Status::Pass), "failed": count(Status::Fail), "skipped": count(Status::Skip) },
    })
}

/// A JUnit test suite for one chapter's results.
pub fn junit_suite(name: &str, results: &[CheckResult]) -> TestSuite {
    let mut suite = TestSuite::new(name);
    for r in results {
        let status = match r.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                if let Some(f) = &r.failure {
                    s.set_message(f.message.lines().next().unwrap_or_default().to_string());
                    s.set_description(format!("{}\nhint: {}", failure_text(f), r.hint));
                }
                s
            }
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                if let Some(why) = &r.skip_reason {
                    s.set_message(why.clone());
                }
                s
            }
        };
        let mut case = TestCase::new(r.id.clone(), status);
        case.set_classname(name.to_string());
        case.set_time(r.duration);
        suite.add_test_case(case);
    }
    suite
}

/// A JUnit report with one suite per (name, results).
pub fn junit(report_name: &str, suites: Vec<TestSuite>) -> anyhow::Result<String> {
    let mut report = Report::new(report_name);
    report.add_test_suites(suites);
    Ok(report.to_string()?)
}
