//! The one report module: a list of [`Record`]s rendered as text for a person, JSON for
//! programs and JUnit for CI systems, from one description of the evidence
//! ([`evidence_fields`]). The counts come from [`Tally`].
//!
//! A new report format goes here, built on [`evidence_fields`] like the three below.

use std::collections::BTreeMap;
use std::fmt::Write;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::verdict::{Evidence, Record, Tally, Verdict};

/// How many bytes of a sent or received value a report shows before cutting it.
pub const SHOWN_BYTES: usize = 200;

/// Shows bytes escaped as the narrated calls show them (`\n`, `\x00`), cut after
/// `limit` bytes with a marker that says how many were left out.
pub fn escape(bytes: &[u8], limit: usize) -> String {
    let shown = syscalls::trace::escape_bytes(&bytes[..bytes.len().min(limit)], limit);
    if bytes.len() > limit {
        format!(
            "{shown}... ({} bytes in all, {} not shown)",
            bytes.len(),
            bytes.len() - limit
        )
    } else {
        shown
    }
}

/// A text as a report quotes it: in double quotes, escaped as the narrated calls show
/// bytes, cut after [`SHOWN_BYTES`].
pub fn quote(text: &str) -> String {
    escape(text.as_bytes(), SHOWN_BYTES)
}

/// Items as a report lists them: `a, b, c`, or `none`.
pub fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let shown: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if shown.is_empty() {
        "none".to_string()
    } else {
        shown.join(", ")
    }
}

/// One named piece of a failure's evidence, as every format shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `message`, `sent`, `expected`, `got`, `seen`, `doing`, `stderr`, `wire`.
    pub name: &'static str,
    pub text: String,
}

/// The evidence of a failure, in the order a reader needs it: what happened, what was
/// sent, expected and received, what the program was doing, its last words.
pub fn evidence_fields(e: &Evidence) -> Vec<Field> {
    let mut fields = vec![Field {
        name: "message",
        text: e.message.clone(),
    }];
    let mut push = |name, text: Option<String>| {
        if let Some(text) = text {
            fields.push(Field { name, text });
        }
    };
    push("sent", e.sent.as_deref().map(|b| escape(b, SHOWN_BYTES)));
    push("expected", e.expected.clone());
    push("got", e.got.as_deref().map(|b| escape(b, SHOWN_BYTES)));
    push("seen", e.seen.clone());
    push("doing", e.doing.clone());
    push("stderr", e.stderr.clone());
    push("wire", e.wire.clone());
    fields
}

/// Colour for a terminal, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Never,
    Ansi,
}

fn painted(verdict: &Verdict, colour: Colour) -> String {
    let label = verdict.label();
    if colour == Colour::Never {
        return label.to_string();
    }
    let code = match verdict {
        Verdict::Pass => "32",
        Verdict::Fail(_) => "31;1",
        Verdict::Skip(_) => "33",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

/// One check in the text report: its line, then what it has to say, each line tagged
/// with the check's id.
///
/// ```text
/// ch04/large-message                 FAIL    1.16s  1 MiB in one write comes back byte-identical
///     [ch04/large-message] only 1024 of 1048576 bytes came back: ...
///     [ch04/large-message] hint: ... (crates/ch04-tcp-echo/README.md, "Reading until end of stream")
/// ```
pub fn text(record: &Record, colour: Colour) -> String {
    let mut out = format!(
        "{:<34} {}  {:>6.2}s  {}\n",
        record.id,
        painted(&record.verdict, colour),
        record.duration.as_secs_f64(),
        record.title
    );
    let tag = format!("    [{}]", record.id);
    if let Verdict::Skip(why) = &record.verdict {
        let _ = writeln!(out, "{tag} skipped: {why}");
    }
    for note in &record.notes {
        let _ = writeln!(out, "{tag} note: {note}");
    }
    for line in &record.transcript {
        let _ = writeln!(out, "{tag} {line}");
    }
    if let Verdict::Fail(evidence) = &record.verdict {
        if let Some(first) = &record.same_cause_as {
            let headline = evidence.message.lines().next().unwrap_or_default();
            let _ = writeln!(out, "{tag} the same cause as {first}: {headline}");
            return out;
        }
        for field in evidence_fields(evidence) {
            match field.name {
                "message" => {
                    for (i, line) in field.text.lines().enumerate() {
                        let indent = if i == 0 { "" } else { "  " };
                        let _ = writeln!(out, "{tag} {indent}{line}");
                    }
                }
                "stderr" => {
                    let _ = writeln!(out, "{tag} its stderr ended with:");
                    for line in field.text.lines() {
                        let _ = writeln!(out, "{tag}   | {line}");
                    }
                }
                "wire" => {
                    let mut lines = field.text.lines();
                    let _ = writeln!(out, "{tag} wire:     {}", lines.next().unwrap_or_default());
                    for line in lines {
                        let _ = writeln!(out, "{tag}   | {line}");
                    }
                }
                name => {
                    let label = format!("{name}:");
                    let _ = writeln!(out, "{tag} {label:<9} {}", field.text);
                }
            }
        }
        let hint = record.hint_for_failure();
        let _ = writeln!(out, "{tag} hint: {} ({})", hint.text, hint.see);
    }
    out
}

/// The whole text report: every check, then the counts.
pub fn text_report(records: &[Record], colour: Colour) -> String {
    let mut out: String = records.iter().map(|r| text(r, colour)).collect();
    let _ = writeln!(out, "{}", Tally::of(records));
    out
}

fn status_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Skip(_) => "skip",
    }
}

/// One check as JSON: id, title, role, status, duration, notes, and for a failure its
/// evidence fields, the hint and the check it shares a cause with.
pub fn json_record(r: &Record) -> serde_json::Value {
    let mut object = serde_json::json!({
        "id": r.id,
        "title": r.title,
        "role": r.role,
        "status": status_word(&r.verdict),
        "duration_ms": (r.duration.as_secs_f64() * 10_000.0).round() / 10.0,
        "notes": r.notes,
    });
    match &r.verdict {
        Verdict::Pass => {}
        Verdict::Skip(why) => {
            object["message"] = why.clone().into();
        }
        Verdict::Fail(evidence) => {
            for field in evidence_fields(evidence) {
                object[field.name] = field.text.into();
            }
            let hint = r.hint_for_failure();
            object["hint"] = hint.text.into();
            object["see"] = hint.see.to_string().into();
            object["same_cause_as"] = r.same_cause_as.clone().into();
        }
    }
    if !r.transcript.is_empty() {
        object["transcript"] = r.transcript.clone().into();
    }
    object
}

/// The JSON report: the chapter, the templates and every check, and the counts.
pub fn json(
    chapter: &str,
    templates: &BTreeMap<String, String>,
    records: &[Record],
) -> serde_json::Value {
    let tally = Tally::of(records);
    serde_json::json!({
        "chapter": chapter,
        "templates": templates,
        "checks": records.iter().map(json_record).collect::<Vec<_>>(),
        "summary": { "passed": tally.passed, "failed": tally.failed, "skipped": tally.skipped },
    })
}

/// A JUnit test suite for one chapter's records.
pub fn junit_suite(name: &str, records: &[Record]) -> TestSuite {
    let mut suite = TestSuite::new(name);
    for r in records {
        let status = match &r.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail(evidence) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(
                    evidence
                        .message
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
                let mut description: Vec<String> = evidence_fields(evidence)
                    .into_iter()
                    .map(|f| match f.name {
                        "message" => f.text,
                        name => format!("{name}: {}", f.text),
                    })
                    .collect();
                let hint = r.hint_for_failure();
                description.push(format!("hint: {} ({})", hint.text, hint.see));
                s.set_description(description.join("\n"));
                s
            }
            Verdict::Skip(why) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(why.clone());
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

/// A JUnit report with these suites.
pub fn junit(report_name: &str, suites: Vec<TestSuite>) -> anyhow::Result<String> {
    let mut report = Report::new(report_name);
    report.add_test_suites(suites);
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_a_marker() {
        assert_eq!(escape(b"ab\0", 10), "\"ab\\x00\"");
        assert_eq!(
            escape(b"abcdef", 2),
            "\"ab\"... (6 bytes in all, 4 not shown)"
        );
    }
}
