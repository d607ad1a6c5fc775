//! strace-style narration of each call on stderr, when tracing is on.
//!
//! Tracing is on when a program calls [`enable`] (chapters do it for `--trace`) or when
//! the environment has `WORKBOOK_TRACE=1`. The format follows strace: the call, its
//! arguments, `=`, the result; a failure shows `-1 ERRNO (text)`.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

static FORCED: AtomicBool = AtomicBool::new(false);
static FROM_ENV: OnceLock<bool> = OnceLock::new();

/// Turns narration on for the rest of the process (the `--trace` flag).
pub fn enable() {
    FORCED.store(true, Ordering::Relaxed);
}

/// Whether calls are narrated: `--trace` was given or `WORKBOOK_TRACE=1` is set.
pub fn enabled() -> bool {
    FORCED.load(Ordering::Relaxed)
        || *FROM_ENV.get_or_init(|| {
            std::env::var("WORKBOOK_TRACE").is_ok_and(|v| !v.is_empty() && v != "0")
        })
}

/// Prints `call = result` or `call = -1 ERRNO (text)` when tracing is on.
///
/// `call` is only built when tracing is on, so a traced-off server pays nothing.
pub(crate) fn narrate<T>(
    call: impl FnOnce() -> String,
    result: &Result<T, Errno>,
    ok: impl FnOnce(&T) -> String,
) {
    if !enabled() {
        return;
    }
    let line = match result {
        Ok(value) => format!("{} = {}", call(), ok(value)),
        Err(errno) => format!("{} = -1 {:?} ({})", call(), errno, errno.desc()),
    };
    emit(&line);
}

/// Writes one narrated line to stderr, whole (one write per line, so lines of two
/// processes sharing a pipe never interleave mid-line).
pub fn emit(line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&buf);
}

/// Shows bytes as strace does: printable ASCII as is, the rest escaped, cut after
/// `limit` bytes with `...`.
pub fn escape_bytes(bytes: &[u8], limit: usize) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(limit) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > limit {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_control_bytes_and_cuts_long_values() {
        assert_eq!(escape_bytes(b"hi\n\0", 32), r#""hi\n\x00""#);
        assert_eq!(escape_bytes(b"abcdef", 3), r#""abc"..."#);
        assert_eq!(escape_bytes(b"say \"x\"", 32), r#""say \"x\"""#);
    }
}
