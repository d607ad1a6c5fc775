//! strace-style narration of each call on stderr, when tracing is on.
//!
//! Tracing is on when a program calls [`enable`] (chapters do it for `--trace`) or when
//! the environment has `WORKBOOK_TRACE=1`. The format follows strace: the call, its
//! arguments, `=`, the result; a failure shows `-1 ERRNO (text)`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

use crate::error::{SysError, SysResult};

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

/// One narrated call's description, trace line and error, from one description.
///
/// `call` names the call and its arguments once, as strace would: `bind(3,
/// 127.0.0.1:9190)`. That one text is the trace line when tracing is on (`bind(3,
/// 127.0.0.1:9190) = 0`, or `... = -1 EADDRINUSE (Address already in use)`) and, when the
/// call failed, the [`SysError`]'s context (`bind(3, 127.0.0.1:9190): EADDRINUSE: Address
/// already in use`), so the two can never say different things.
///
/// `call` is given the result when there is one, for arguments that are only known once
/// the call returns (the bytes read() filled in). It runs only when it is needed, when
/// tracing is on or the call failed: a traced-off server pays nothing for a success.
/// `shown` formats a success's result (`3`, `4 (127.0.0.1:53422)`).
pub(crate) fn traced<T>(
    call: impl FnOnce(Option<&T>) -> String,
    result: Result<T, Errno>,
    shown: impl FnOnce(&T) -> String,
) -> SysResult<T> {
    match result {
        Ok(value) => {
            if enabled() {
                emit(&format!("{} = {}", call(Some(&value)), shown(&value)));
            }
            Ok(value)
        }
        Err(errno) => {
            let call = call(None);
            if enabled() {
                emit(&format!("{call} = -1 {errno:?} ({})", errno.desc()));
            }
            Err(SysError::new(call, errno))
        }
    }
}

/// The result of a call that returns nothing but success, as strace shows it: `0`.
pub(crate) fn zero<T>(_: &T) -> String {
    "0".into()
}

/// Writes one narrated line to stderr, whole (one write per line, so lines of two
/// processes sharing a pipe never interleave mid-line), and never waiting for a reader
/// ([`crate::output`]: a trace nobody reads must not stop the program it traces).
pub fn emit(line: &str) {
    crate::output::line(crate::output::Stream::Stderr, line);
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
    fn a_failed_call_is_described_once_for_the_error() {
        let err = traced(
            |_: Option<&()>| "bind(3, 127.0.0.1:9190)".to_string(),
            Err(Errno::EADDRINUSE),
            zero,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bind(3, 127.0.0.1:9190): EADDRINUSE: Address already in use"
        );
    }

    #[test]
    fn escape_shows_control_bytes_and_cuts_long_values() {
        assert_eq!(escape_bytes(b"hi\n\0", 32), r#""hi\n\x00""#);
        assert_eq!(escape_bytes(b"abcdef", 3), r#""abc"..."#);
        assert_eq!(escape_bytes(b"say \"x\"", 32), r#""say \"x\"""#);
    }
}
