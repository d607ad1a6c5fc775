//! The demo's timeline: every side's lines, and the wire's, in the order things happened.
//!
//! # How the merge works
//!
//! A demo's server and client are two processes writing into two pipes. The demo reads
//! each pipe in a thread of its own, so lines arrive in whatever order the threads
//! happen to run: the server's `read()` of "Hello" could print before the client's
//! `write()` of it. So the demo does not print lines as they arrive. It collects them
//! and prints them once the demo is over, sorted by when they happened:
//!
//! * **Narrated calls carry their times.** A demo's children run with
//!   `WORKBOOK_TIMELINE=1`, and each narrated call then says when it began and when it
//!   ended on `CLOCK_MONOTONIC`, the clock every process of the machine shares, and
//!   which thread made it (`syscalls::trace::Stamped`). Captured segments (`--wire`) are
//!   put on the same clock.
//! * **A plain line is placed after the call before it.** What a program prints itself
//!   (`Message from server: ...`) has no time of its own; it comes after the last
//!   stamped line of the same pipe, since a program prints what a call returned. A line
//!   of the demo process itself with nothing stamped before it takes the time it was
//!   read. The demo's own notes ([`crate::demo::note`], [`crate::demo::say`]) are
//!   stamped when they are made.
//! * **A call is two moments.** Each call's start and end are points on the one clock;
//!   every point of every line is sorted. A call is printed whole where it began when
//!   nothing of another thread happened while it ran. Otherwise it is printed twice, as
//!   `strace -f` does: where it began (`read(4, <unfinished ...>`) and where it resumed
//!   (`<... read resumed> "Hello socket!\n", 1024) = 14`), and whatever happened in
//!   between (the client's `write()`, the segment that carried the bytes) prints between
//!   the two.
//!
//! So an effect never prints before its cause: a `read()` cannot return bytes before the
//! `write()` of them began, so the write's first line always comes before the read's
//! last; `accept()` cannot return before `connect()` began.
//!
//! Why at the end and not as lines arrive: a line can only be placed once every process
//! has said everything it did before that moment, and a process blocked in a call has
//! not said yet when the call began. A demo lasts a few seconds; its transcript is
//! printed whole when it ends (or fails).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use syscalls::trace::Stamped;

/// Which thread a line belongs to: its source (a pipe, the demo's notes, the wire) and
/// the thread id that made the call.
type Track = (u32, i32);

/// One line on the timeline.
#[derive(Debug, Clone)]
pub struct Line {
    /// The prefix: `server`, `client`, `wire`; None for the demo's own lines.
    pub side: Option<String>,
    track: Track,
    /// The process that made it: a side's forked children are named apart from its
    /// threads.
    pid: i32,
    /// When it began, and, for a call, when it ended (nanoseconds, CLOCK_MONOTONIC).
    pub start: u64,
    pub end: u64,
    /// For a call: how much of `text` was known when it began.
    pub entry: Option<usize>,
    pub text: String,
    /// Arrival order, the tie-breaker.
    seq: u64,
    /// A plain line with nothing stamped before it in its pipe: its time is when the
    /// demo read it, no earlier than when it was written, and it is moved back before
    /// the next stamped line of its pipe ([`Timeline::uninstall`]).
    read_at: bool,
}

impl Line {
    fn is_call(&self) -> bool {
        self.entry.is_some() && self.end > self.start
    }
}

/// The lines of a running demo, collected from every side.
#[derive(Debug, Default)]
pub struct Timeline {
    lines: Mutex<Vec<Line>>,
    names: Mutex<Vec<(u16, String)>>,
    sources: AtomicU32,
    seq: AtomicU64,
}

/// The source id of the demo's own notes; the wire's.
const NOTES: u32 = 0;
const WIRE: u32 = 1;

static ACTIVE: Mutex<Option<Arc<Timeline>>> = Mutex::new(None);

/// The timeline of the demo now running, if one collects lines.
pub fn active() -> Option<Arc<Timeline>> {
    ACTIVE.lock().ok().and_then(|a| a.clone())
}

impl Timeline {
    /// Starts collecting: from now on sides put their lines here instead of printing.
    pub fn install() -> Arc<Timeline> {
        let timeline = Arc::new(Timeline {
            sources: AtomicU32::new(WIRE + 1),
            ..Timeline::default()
        });
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(Arc::clone(&timeline));
        }
        timeline
    }

    /// Stops collecting and returns everything collected.
    ///
    /// A plain line timed by when it was read cannot have been written after a stamped
    /// line that followed it in its pipe: it is moved back to that line's start.
    pub fn uninstall(&self) -> Vec<Line> {
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        let mut lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()));
        lines.sort_by_key(|l| l.seq);
        let mut next_stamped: std::collections::HashMap<u32, u64> = Default::default();
        for line in lines.iter_mut().rev() {
            if line.read_at {
                if let Some(&next) = next_stamped.get(&line.track.0) {
                    line.start = line.start.min(next);
                    line.end = line.start;
                }
            } else {
                next_stamped.insert(line.track.0, line.start);
            }
        }
        lines
    }

    fn push(&self, mut line: Line) {
        line.seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    /// A new source of lines (one pipe), printed with `side`'s prefix.
    pub fn source(self: &Arc<Timeline>, side: Option<&str>) -> Source {
        Source {
            timeline: Arc::clone(self),
            id: self.sources.fetch_add(1, Ordering::Relaxed),
            side: side.map(str::to_string),
            last: None,
        }
    }

    /// A line of the demo's own, at this moment.
    pub fn note(&self, side: Option<&str>, text: &str) {
        let now = syscalls::trace::now();
        self.push(Line {
            side: side.map(str::to_string),
            track: (NOTES, 0),
            pid: 0,
            start: now,
            end: now,
            entry: None,
            text: text.to_string(),
            seq: 0,
            read_at: false,
        });
    }

    /// A line of the wire, at `when`.
    pub fn wire(&self, when: u64, text: &str) {
        self.push(Line {
            side: Some("wire".to_string()),
            track: (WIRE, 0),
            pid: 0,
            start: when,
            end: when,
            entry: None,
            text: text.to_string(),
            seq: 0,
            read_at: false,
        });
    }

    /// Names the program listening on `port` (`server`), for the wire's lines.
    pub fn name_port(&self, port: u16, name: &str) {
        if let Ok(mut names) = self.names.lock() {
            names.push((port, name.to_string()));
        }
    }

    /// The names given with [`Timeline::name_port`].
    pub fn port_names(&self) -> Vec<(u16, String)> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

/// One pipe's lines on their way to the timeline.
#[derive(Debug)]
pub struct Source {
    timeline: Arc<Timeline>,
    id: u32,
    side: Option<String>,
    /// The last stamped line's end and thread: where a plain line after it goes.
    last: Option<(u64, i32, i32)>,
}

impl Source {
    /// Puts one line read from the pipe on the timeline, and returns its text without
    /// the stamp (what the demo waits for: `close(4) = 0`).
    pub fn line(&mut self, raw: &str) -> String {
        let line = match Stamped::parse(raw) {
            Some(stamped) if stamped.is_mark() => {
                // A call not narrated: only where the next plain line goes.
                self.last = Some((stamped.end, stamped.tid, stamped.pid));
                return String::new();
            }
            Some(stamped) => {
                self.last = Some((stamped.end, stamped.tid, stamped.pid));
                Line {
                    side: self.side.clone(),
                    track: (self.id, stamped.tid),
                    pid: stamped.pid,
                    start: stamped.start,
                    end: stamped.end.max(stamped.start),
                    entry: stamped.entry,
                    text: stamped.text,
                    seq: 0,
                    read_at: false,
                }
            }
            None => {
                let (at, tid, pid, read_at) = match self.last {
                    Some((at, tid, pid)) => (at, tid, pid, false),
                    None => (syscalls::trace::now(), 0, 0, true),
                };
                Line {
                    side: self.side.clone(),
                    track: (self.id, tid),
                    pid,
                    start: at,
                    end: at,
                    entry: None,
                    text: raw.to_string(),
                    seq: 0,
                    read_at,
                }
            }
        };
        let text = line.text.clone();
        self.timeline.push(line);
        text
    }
}

/// The lines in the order things happened, each with its prefix, a call that waited
/// while something else happened split in two (see the module's documentation).
pub fn render(lines: &[Line]) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Start,
        End,
    }
    // Every line's start, and every call's end: points on the one clock.
    let mut points: Vec<(u64, u64, Kind, usize)> = Vec::with_capacity(lines.len() * 2);
    for (i, line) in lines.iter().enumerate() {
        points.push((line.start, line.seq, Kind::Start, i));
        if line.is_call() {
            points.push((line.end, line.seq, Kind::End, i));
        }
    }
    points.sort();
    let mut start_at = vec![0; lines.len()];
    let mut end_at = vec![0; lines.len()];
    for (at, &(_, _, kind, i)) in points.iter().enumerate() {
        match kind {
            Kind::Start => start_at[i] = at,
            Kind::End => end_at[i] = at,
        }
    }
    // A call is split when a point of another thread lies between its two.
    let split: Vec<bool> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.is_call()
                && points[start_at[i] + 1..end_at[i]]
                    .iter()
                    .any(|&(_, _, _, j)| lines[j].track != line.track)
        })
        .collect();
    // A side with several threads (a server with a thread per client) or processes (a
    // server that forks) names each, as strace -f names pids: `[server]` for its first
    // process's first thread, `[server thread 2]` for its next thread, `[server child 1]`
    // for the first child it forked, so that a `<... read resumed>` is seen to belong to
    // the read it resumes, and a child is not mistaken for a thread.
    type Seen = Vec<(i32, Vec<i32>)>;
    let mut seen_by_source: std::collections::HashMap<u32, Seen> = std::collections::HashMap::new();
    for &(_, _, _, i) in &points {
        let line = &lines[i];
        if !line.is_call() {
            continue;
        }
        let (source, tid) = line.track;
        let processes = seen_by_source.entry(source).or_default();
        let at = match processes.iter().position(|(pid, _)| *pid == line.pid) {
            Some(at) => at,
            None => {
                processes.push((line.pid, Vec::new()));
                processes.len() - 1
            }
        };
        if !processes[at].1.contains(&tid) {
            processes[at].1.push(tid);
        }
    }
    let prefix = |line: &Line| -> Option<String> {
        let side = line.side.as_ref()?;
        let (source, tid) = line.track;
        let processes = seen_by_source
            .get(&source)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let Some(child) = processes.iter().position(|(pid, _)| *pid == line.pid) else {
            return Some(side.clone());
        };
        let process = match child {
            0 => side.clone(),
            n => format!("{side} child {n}"),
        };
        match processes[child].1.iter().position(|t| *t == tid) {
            Some(n) if n > 0 => Some(format!("{process} thread {}", n + 1)),
            _ => Some(process),
        }
    };
    let mut out = Vec::with_capacity(points.len());
    for &(_, _, kind, i) in &points {
        let line = &lines[i];
        let stamped = || Stamped {
            start: line.start,
            end: line.end,
            tid: line.track.1,
            pid: line.pid,
            entry: line.entry,
            text: line.text.clone(),
        };
        let text = match (kind, split[i]) {
            (Kind::Start, false) => line.text.clone(),
            (Kind::Start, true) => stamped().unfinished(),
            (Kind::End, true) => stamped().resumed(),
            (Kind::End, false) => continue,
        };
        out.push(match prefix(line) {
            Some(side) => format!("[{side}] {text}"),
            None => text,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(side: &str, source: u32, start: u64, end: u64, entry: usize, text: &str) -> Line {
        Line {
            side: Some(side.into()),
            track: (source, 1),
            pid: 1,
            start,
            end,
            entry: Some(entry),
            text: text.into(),
            seq: start,
            read_at: false,
        }
    }

    /// The server's read() began before the client's write() and returned after it: it
    /// is shown waiting, the write, then its return.
    #[test]
    fn a_read_that_waited_for_a_write_is_split_around_it() {
        let lines = vec![
            call("server", 2, 10, 50, 8, r#"read(4, "Hi\n", 1024) = 3"#),
            call("client", 3, 20, 30, 21, r#"write(3, "Hi\n", 3) = 3"#),
        ];
        assert_eq!(
            render(&lines),
            [
                "[server] read(4, <unfinished ...>",
                r#"[client] write(3, "Hi\n", 3) = 3"#,
                r#"[server] <... read resumed> "Hi\n", 1024) = 3"#,
            ]
        );
    }

    /// A side's forked child is named as a child, its threads as threads, as strace -f
    /// tells pids apart.
    #[test]
    fn a_forked_child_is_not_called_a_thread() {
        let timeline = Timeline::install();
        let mut server = timeline.source(Some("server"));
        server.line("\x0110 11 100 8 100\x02accept(3) = 4");
        server.line("\x0112 13 101 6 101\x02fork() = 0");
        server.line("\x0114 15 102 8 100\x02read(5) = 0");
        server.line("\x0116 17 103 8 101\x02read(4) = 0");
        let mut lines = timeline.uninstall();
        lines.sort_by_key(|l| l.seq);
        assert_eq!(
            render(&lines),
            [
                "[server] accept(3) = 4",
                "[server child 1] fork() = 0",
                "[server thread 2] read(5) = 0",
                "[server child 1 thread 2] read(4) = 0",
            ]
        );
    }

    /// Calls that overlap nothing print whole, in the order they began; a plain line of
    /// a pipe follows the call before it.
    #[test]
    fn calls_alone_print_whole_and_plain_lines_follow_their_call() {
        let timeline = Timeline::install();
        let mut client = timeline.source(Some("client"));
        client.line("\x0110 20 7 8 7\x02read(3, \"Hi\\n\", 1024) = 3");
        client.line("Message from server: Hi");
        timeline.note(None, "between");
        let mut lines = timeline.uninstall();
        // The note was taken now, long after 20 ns: it comes last.
        lines.sort_by_key(|l| l.seq);
        assert_eq!(
            render(&lines),
            [
                r#"[client] read(3, "Hi\n", 1024) = 3"#,
                "[client] Message from server: Hi",
                "between",
            ]
        );
    }

    /// Two calls of one thread never split each other; a call that ends while another
    /// thread's call runs splits both.
    #[test]
    fn overlapping_calls_of_two_threads_are_both_split() {
        let lines = vec![
            call("server", 2, 10, 30, 8, "accept(3) = 4 (127.0.0.1:5000)"),
            call("client", 3, 20, 40, 25, "connect(3, 127.0.0.1:9190) = 0"),
        ];
        let out = render(&lines);
        assert_eq!(
            out,
            [
                "[server] accept(3 <unfinished ...>",
                "[client] connect(3, 127.0.0.1:9190 <unfinished ...>",
                "[server] <... accept resumed>) = 4 (127.0.0.1:5000)",
                "[client] <... connect resumed>) = 0",
            ]
        );
    }
}
