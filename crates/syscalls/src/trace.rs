//! strace-style narration of each call on stderr, when tracing is on.
//!
//! Tracing is on when a program calls [`enable`] (chapters do it for `--trace`) or when
//! the environment has `WORKBOOK_TRACE=1`. The format follows strace: the call, its
//! arguments, `=`, the result; a failure shows `-1 ERRNO (text)`.
//!
//! # One clock for several processes
//!
//! A demo runs a server and a client as two processes and prints both sides' lines. Read
//! from two pipes, lines arrive in whatever order the pipes deliver them, so an effect
//! could print before its cause (the server's `read()` of "Hello" before the client's
//! `write()` of it). So when a demo asks for it (`WORKBOOK_TIMELINE=1` in a child's
//! environment, [`stamp_lines`] in the demo itself), every narrated call carries when it
//! began and when it ended on `CLOCK_MONOTONIC`, a clock that every process of the
//! machine shares, and the thread that made it: a [`Stamped`] line, which the demo
//! (`workbook::timeline`) sorts and prints as strace -f would, a call that waited while
//! something else happened shown where it began (`read(4, <unfinished ...>`) and where
//! it resumed (`<... read resumed> "Hello socket!\n", 1024) = 14`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

use crate::error::{SysError, SysResult};

static FORCED: AtomicBool = AtomicBool::new(false);
static FROM_ENV: OnceLock<bool> = OnceLock::new();
static STAMP_FORCED: AtomicBool = AtomicBool::new(false);
static STAMP_FROM_ENV: OnceLock<bool> = OnceLock::new();

/// The environment variable a demo sets in its children: stamp every narrated line.
pub const TIMELINE_ENV: &str = "WORKBOOK_TIMELINE";

fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Turns narration on for the rest of the process (the `--trace` flag).
pub fn enable() {
    FORCED.store(true, Ordering::Relaxed);
}

/// Whether calls are narrated: `--trace` was given or `WORKBOOK_TRACE=1` is set.
pub fn enabled() -> bool {
    FORCED.load(Ordering::Relaxed) || *FROM_ENV.get_or_init(|| env_on("WORKBOOK_TRACE"))
}

/// Makes every narrated line of this process a [`Stamped`] one, for a demo that merges
/// it with other processes' lines (a child gets `WORKBOOK_TIMELINE=1` instead).
pub fn stamp_lines() {
    STAMP_FORCED.store(true, Ordering::Relaxed);
}

/// Whether narrated lines carry their times (see the module's documentation).
pub fn stamping() -> bool {
    STAMP_FORCED.load(Ordering::Relaxed) || *STAMP_FROM_ENV.get_or_init(|| env_on(TIMELINE_ENV))
}

/// Now on `CLOCK_MONOTONIC`, in nanoseconds: the clock every process of the machine
/// shares (it does not jump when the wall clock is set), read through the vDSO.
pub fn now() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        (t.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec() as u64)
    })
}

/// When a narrated call began: taken just before the call, and only when lines are
/// stamped (reading the clock costs a traced-off server nothing then).
#[derive(Debug, Clone, Copy)]
pub struct Started(u64);

/// Marks the start of a call for [`traced`]. A caller writes it as the first argument,
/// `traced(start(), |_| ..., the_call(), ...)`: Rust evaluates arguments left to right,
/// so the clock is read before the call is made.
pub fn start() -> Started {
    Started(if stamping() { now() } else { 0 })
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
/// `shown` formats a success's result (`3`, `4 (127.0.0.1:53422)`). `started` is
/// [`start`], taken before the call was made.
pub(crate) fn traced<T>(
    started: Started,
    call: impl Fn(Option<&T>) -> String,
    result: Result<T, Errno>,
    shown: impl FnOnce(&T) -> String,
) -> SysResult<T> {
    match result {
        Ok(value) => {
            if enabled() {
                let text = call(Some(&value));
                let entry = stamping().then(|| entry_len(&call(None), &text));
                emit_call(started, entry, &format!("{text} = {}", shown(&value)));
            } else if stamping() {
                emit_mark(started);
            }
            Ok(value)
        }
        Err(errno) => {
            let call = call(None);
            if enabled() {
                let entry = stamping().then(|| entry_len(&call, &call));
                emit_call(
                    started,
                    entry,
                    &format!("{call} = -1 {errno:?} ({})", errno.desc()),
                );
            } else if stamping() {
                emit_mark(started);
            }
            Err(SysError::new(call, errno))
        }
    }
}

/// How much of a call's text was known when it began, as strace shows a call that
/// waited: `read(4, ` (the bytes come back with it), or `write(3, "hi", 2` (every
/// argument went in). `before` is the call described without its result, `after` with
/// it: what they share, up to an argument's end, went in.
fn entry_len(before: &str, after: &str) -> usize {
    if before == after {
        return after.rfind(')').unwrap_or(after.len());
    }
    let shared = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    after[..shared].rfind([',', '(']).map_or(shared, |at| {
        let at = at + 1;
        if after[at..].starts_with(' ') {
            at + 1
        } else {
            at
        }
    })
}

/// The result of a call that returns nothing but success, as strace shows it: `0`.
pub(crate) fn zero<T>(_: &T) -> String {
    "0".into()
}

/// Writes one narrated line to stderr, whole (one write per line, so lines of two
/// processes sharing a pipe never interleave mid-line), and never waiting for a reader
/// ([`crate::output`]: a trace nobody reads must not stop the program it traces).
///
/// For narration that is not one call of this crate (ch10's `signal()` of the book);
/// stamped, it is a moment, not a span.
pub fn emit(line: &str) {
    if stamping() {
        let at = now();
        emit_raw(&Stamped::encode(at, at, None, line));
    } else {
        emit_raw(line);
    }
}

fn emit_call(started: Started, entry: Option<usize>, line: &str) {
    match entry {
        Some(entry) => emit_raw(&Stamped::encode(started.0, now(), Some(entry), line)),
        None => emit_raw(line),
    }
}

/// A call's times without its text, for a demo that stamps its lines but does not
/// narrate (`--wire` without `--trace`): what the program prints next is placed after
/// the call, though the call itself is not shown ([`Stamped::is_mark`]).
fn emit_mark(started: Started) {
    emit_raw(&Stamped::encode(started.0, now(), None, ""));
}

fn emit_raw(line: &str) {
    crate::output::line(crate::output::Stream::Stderr, line);
}

/// A narrated line with its times, as a process that stamps its lines writes it:
///
/// ```text
/// \x01 START END TID ENTRY \x02 TEXT
/// ```
///
/// START and END in nanoseconds of `CLOCK_MONOTONIC`, TID the thread that made the call,
/// ENTRY how many bytes of TEXT were known when the call began (`-` for a moment rather
/// than a call). The two control characters cannot begin a line a person prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub start: u64,
    pub end: u64,
    pub tid: i32,
    /// The process that made it (a forked child is a process of its own, not a thread).
    pub pid: i32,
    /// For a call: how much of `text` is its entry (see [`entry_len`]).
    pub entry: Option<usize>,
    pub text: String,
}

impl Stamped {
    fn encode(start: u64, end: u64, entry: Option<usize>, text: &str) -> String {
        let tid = nix::unistd::gettid();
        let pid = nix::unistd::getpid();
        let entry = entry.map_or("-".to_string(), |e| e.to_string());
        format!("\x01{start} {end} {tid} {entry} {pid}\x02{text}")
    }

    /// The stamped line `line`, or None for a line without a stamp.
    pub fn parse(line: &str) -> Option<Stamped> {
        let rest = line.strip_prefix('\x01')?;
        let (head, text) = rest.split_once('\x02')?;
        let mut fields = head.split(' ');
        let start = fields.next()?.parse().ok()?;
        let end = fields.next()?.parse().ok()?;
        let tid = fields.next()?.parse().ok()?;
        let entry = match fields.next()? {
            "-" => None,
            n => Some(n.parse::<usize>().ok()?.min(text.len())),
        };
        let pid = fields.next()?.parse().ok()?;
        Some(Stamped {
            start,
            end,
            tid,
            pid,
            entry: entry.filter(|e| text.is_char_boundary(*e)),
            text: text.to_string(),
        })
    }

    /// A call's times without its text: not shown, only a place (see `emit_mark`).
    pub fn is_mark(&self) -> bool {
        self.text.is_empty() && self.entry.is_none()
    }

    /// The call's name: `read` for `read(4, ...)`.
    pub fn name(&self) -> &str {
        self.text.split('(').next().unwrap_or(&self.text)
    }

    /// The line a call that waited shows where it began: `read(4, <unfinished ...>`.
    pub fn unfinished(&self) -> String {
        let entry = &self.text[..self.entry.unwrap_or(self.text.len())];
        if entry.ends_with(' ') || entry.ends_with('(') {
            format!("{entry}<unfinished ...>")
        } else {
            format!("{entry} <unfinished ...>")
        }
    }

    /// The line it shows where it resumed: `<... read resumed> "hi", 1024) = 2`.
    pub fn resumed(&self) -> String {
        let rest = &self.text[self.entry.unwrap_or(self.text.len())..];
        if rest.starts_with(')') || rest.is_empty() {
            format!("<... {} resumed>{rest}", self.name())
        } else {
            format!("<... {} resumed> {rest}", self.name())
        }
    }
}

/// A demo's transcript with every call it showed in two pieces (`read(4, <unfinished
/// ...>` ... `<... read resumed> "hi", 1024) = 2`) joined back into one line where it
/// began (`read(4, "hi", 1024) = 2`): for a test that looks for a call, whatever else
/// happened while the call ran. Lines are matched by their `[side] ` prefix and the
/// call's name, the oldest unfinished one first.
pub fn joined(transcript: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    // (prefix, call name, index in out) of each call still unfinished.
    let mut pending: Vec<(&str, &str, usize)> = Vec::new();
    for line in transcript.lines() {
        let prefix_len = if line.starts_with('[') {
            line.find("] ").map_or(0, |at| at + 2)
        } else {
            0
        };
        let (prefix, body) = line.split_at(prefix_len);
        if let Some(entry) = body.strip_suffix("<unfinished ...>") {
            let entry = if entry.ends_with(", ") || entry.ends_with('(') {
                entry
            } else {
                entry.strip_suffix(' ').unwrap_or(entry)
            };
            let name = entry.split('(').next().unwrap_or(entry);
            pending.push((prefix, name, out.len()));
            out.push(format!("{prefix}{entry}"));
            continue;
        }
        let resumed = body
            .strip_prefix("<... ")
            .and_then(|rest| rest.split_once(" resumed>"));
        if let Some((name, rest)) = resumed
            && let Some(at) = pending
                .iter()
                .position(|(p, n, _)| *p == prefix && *n == name)
        {
            let (_, _, index) = pending.remove(at);
            out[index].push_str(rest.strip_prefix(' ').unwrap_or(rest));
            continue;
        }
        out.push(line.to_string());
    }
    let mut text = out.join("\n");
    if transcript.ends_with('\n') {
        text.push('\n');
    }
    text
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
            start(),
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
    fn a_call_that_waited_is_split_where_its_result_begins() {
        // read(): the bytes are the result; write(): every argument went in.
        let read = r#"read(4, "Hello\n", 1024) = 6"#;
        let entry = entry_len("read(4, 1024)", r#"read(4, "Hello\n", 1024)"#);
        let line = Stamped::parse(&Stamped::encode(1, 2, Some(entry), read)).unwrap();
        assert_eq!(line.unfinished(), "read(4, <unfinished ...>");
        assert_eq!(line.resumed(), r#"<... read resumed> "Hello\n", 1024) = 6"#);
        let write = r#"write(3, "Hello\n", 6)"#;
        let line = Stamped {
            start: 1,
            end: 2,
            tid: 7,
            pid: 7,
            entry: Some(entry_len(write, write)),
            text: format!("{write} = 6"),
        };
        assert_eq!(
            line.unfinished(),
            r#"write(3, "Hello\n", 6 <unfinished ...>"#
        );
        assert_eq!(line.resumed(), "<... write resumed>) = 6");
        let accept = "accept(3)";
        let line = Stamped {
            entry: Some(entry_len(accept, accept)),
            text: "accept(3) = 4 (127.0.0.1:5000)".into(),
            ..line
        };
        assert_eq!(line.unfinished(), "accept(3 <unfinished ...>");
        assert_eq!(line.resumed(), "<... accept resumed>) = 4 (127.0.0.1:5000)");
    }

    #[test]
    fn a_call_shown_in_two_pieces_is_joined_back_where_it_began() {
        let transcript = "[server] read(4, <unfinished ...>\n\
            [client] write(3, \"Hi\", 2 <unfinished ...>\n\
            [server] <... read resumed> \"Hi\", 1024) = 2\n\
            [client] <... write resumed>) = 2\n\
            [server] close(4) = 0\n";
        assert_eq!(
            joined(transcript),
            "[server] read(4, \"Hi\", 1024) = 2\n\
             [client] write(3, \"Hi\", 2) = 2\n\
             [server] close(4) = 0\n"
        );
    }

    #[test]
    fn a_stamped_line_survives_its_encoding_and_a_plain_one_is_not_stamped() {
        let encoded = Stamped::encode(10, 20, None, "signal(SIGALRM, timeout) = 0");
        let line = Stamped::parse(&encoded).unwrap();
        assert_eq!((line.start, line.end, line.entry), (10, 20, None));
        assert_eq!(line.text, "signal(SIGALRM, timeout) = 0");
        assert_eq!(Stamped::parse("listening on 127.0.0.1:9190"), None);
    }

    #[test]
    fn the_clock_goes_forward() {
        let a = now();
        let b = now();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn escape_shows_control_bytes_and_cuts_long_values() {
        assert_eq!(escape_bytes(b"hi\n\0", 32), r#""hi\n\x00""#);
        assert_eq!(escape_bytes(b"abcdef", 3), r#""abc"..."#);
        assert_eq!(escape_bytes(b"say \"x\"", 32), r#""say \"x\"""#);
    }
}
