//! The text report: one line per check, the evidence under each failure, the summary
//! last.

use std::fmt::Write;

use crate::check::Failure;
use crate::runner::{CheckResult, Status};

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

/// The line for one check: `ch04/echo-line  PASS  0.05s  title`.
pub fn check_line(result: &CheckResult) -> String {
    format!(
        "{:<34} {}  {:>6.2}s  {}",
        result.id,
        result.status.label(),
        result.duration.as_secs_f64(),
        result.title
    )
}

/// The evidence under a failed or skipped check, each line prefixed with the id.
pub fn details(result: &CheckResult) -> String {
    let mut out = String::new();
    let tag = format!("[{}]", result.id);
    if let Some(why) = &result.skip_reason {
        let _ = writeln!(out, "    {tag} skipped: {why}");
    }
    for note in &result.notes {
        let _ = writeln!(out, "    {tag} note: {note}");
    }
    for line in &result.transcript {
        let _ = writeln!(out, "    {tag} {line}");
    }
    if let Some(f) = &result.failure {
        write_failure(&mut out, &tag, f);
        if result.status == Status::Fail {
            let _ = writeln!(out, "    {tag} hint: {}", result.hint);
        }
    }
    out
}

fn write_failure(out: &mut String, tag: &str, f: &Failure) {
    for (i, line) in f.message.lines().enumerate() {
        let _ = writeln!(out, "    {tag} {}{line}", if i == 0 { "" } else { "  " });
    }
    if let Some(sent) = &f.sent {
        let _ = writeln!(out, "    {tag} sent:     {}", escape(sent, SHOWN_BYTES));
    }
    if let Some(expected) = &f.expected {
        let _ = writeln!(out, "    {tag} expected: {expected}");
    }
    if let Some(got) = &f.got {
        let _ = writeln!(out, "    {tag} got:      {}", escape(got, SHOWN_BYTES));
    }
    if let Some(stderr) = &f.stderr {
        let _ = writeln!(out, "    {tag} its stderr ended with:");
        for line in stderr.lines() {
            let _ = writeln!(out, "    {tag}   | {line}");
        }
    }
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
