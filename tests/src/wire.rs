//! The wire in a failing check's evidence (`cargo xtask check ... --wire`).
//!
//! With `--wire`, xtask moves the checker into a network namespace of its own before
//! any check runs ([`start`]; no root needed, `wire::namespace`). Every program a check
//! starts inherits it, so the program under test and the checker's peers talk over a
//! loopback nothing else uses, and the checker captures it. When a check fails, its
//! evidence gains the segments of the connections on its ports since it began
//! ([`evidence`]) and, when they show one, what went wrong in TCP's terms: "your server
//! sent RST after its FIN ...".
//!
//! Nothing else changes: the same checks run through the same grading path and reach
//! the same verdicts; the wire only adds to the evidence of a failure ([`crate::check`]
//! asks for it in `Ctx::conclude`).

use std::sync::OnceLock;

use ::wire::{Capture, Narrator, Segment};

/// The run's capture, once [`start`] has made one.
static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// How much of each frame the checker keeps: the headers and the start of the payload
/// (a run of checks moves megabytes, and only a preview is shown).
const KEEP: usize = 160;

/// At most this many segments are listed; the first few and the last ones (where a
/// connection ends, and most failures show) are kept.
const SHOWN: usize = 16;

/// Enters a private network and starts capturing its loopback. Call it before any
/// thread starts (a user namespace requires it). The error is one line to print; the
/// checks then run as without `--wire`.
pub fn start() -> Result<(), String> {
    ::wire::enter().map_err(|e| format!("{e} (checking without the wire)"))?;
    let capture = Capture::start_keeping(KEEP).map_err(|e| {
        format!("--wire: cannot capture the loopback ({e}); checking without the wire")
    })?;
    let _ = CAPTURE.set(capture);
    Ok(())
}

/// Whether the checks run on a captured loopback.
pub fn active() -> bool {
    CAPTURE.get().is_some()
}

/// A port a check's connections use, and whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The program under test listens here (a server role).
    Program(u16),
    /// The checker listens here, for a client under test.
    Checker(u16),
}

impl End {
    fn port(self) -> u16 {
        match self {
            End::Program(port) | End::Checker(port) => port,
        }
    }
}

/// The wire's part of a failing check's evidence: the segments on `ends`' ports since
/// `since` (CLOCK_MONOTONIC nanoseconds), each with its time from then, headed by what
/// they show went wrong, if they show it. None when nothing is captured.
pub fn evidence(ends: &[End], since: u64) -> Option<String> {
    let capture = CAPTURE.get()?;
    if ends.is_empty() {
        return None;
    }
    let seen: Vec<(u64, Segment)> = capture
        .so_far()
        .into_iter()
        .filter(|frame| frame.mono_ns >= since)
        .filter_map(|frame| Some((frame.mono_ns, Segment::parse(&frame)?)))
        .filter(|(_, segment)| ends.iter().any(|end| segment.involves(end.port())))
        .collect();
    let ports: Vec<String> = ends.iter().map(|e| e.port().to_string()).collect();
    if seen.is_empty() {
        return Some(format!(
            "nothing was sent on port {} during the check",
            ports.join(" or ")
        ));
    }
    let mut narrator = Narrator::new();
    for end in ends {
        match end {
            End::Program(port) => {
                narrator.name(*port, "server");
                narrator.call_others("checker");
            }
            End::Checker(port) => {
                narrator.name(*port, "checker");
                narrator.call_others("client");
            }
        }
    }
    let lines: Vec<String> = seen
        .iter()
        .map(|(at, segment)| {
            let ms = at.saturating_sub(since) as f64 / 1e6;
            format!("{ms:9.3} ms  {}", narrator.line(segment))
        })
        .collect();
    let headline = reset(ends, &seen).unwrap_or_else(|| {
        format!(
            "the segments on port {} (ms from the check's start):",
            ports.join(" and ")
        )
    });
    let mut text = headline;
    if lines.len() <= SHOWN {
        for line in &lines {
            text.push('\n');
            text.push_str(line);
        }
    } else {
        let (head, tail) = (4, SHOWN - 4);
        for line in &lines[..head] {
            text.push('\n');
            text.push_str(line);
        }
        text.push_str(&format!(
            "\n   ... ({} segments not shown)",
            lines.len() - head - tail
        ));
        for line in &lines[lines.len() - tail..] {
            text.push('\n');
            text.push_str(line);
        }
    }
    Some(text)
}

/// What a reset sent by the program under test says, in a sentence: after its FIN, it
/// had closed and refused what came after; without one, it closed with unread data.
fn reset(ends: &[End], seen: &[(u64, Segment)]) -> Option<String> {
    // The program's end of a segment: the listening port for a server under test, the
    // other port for a client under test.
    let from_program = |src: std::net::SocketAddr, dst: std::net::SocketAddr| {
        ends.iter().any(|end| match end {
            End::Program(port) => src.port() == *port,
            End::Checker(port) => dst.port() == *port,
        })
    };
    let role = if ends.iter().any(|e| matches!(e, End::Program(_))) {
        "your server"
    } else {
        "your client"
    };
    let (_, rst) = seen.iter().find(|(_, s)| {
        matches!(s, Segment::Tcp { src, dst, flags, .. } if flags.rst && from_program(*src, *dst))
    })?;
    let Segment::Tcp { src, dst, .. } = rst else {
        return None;
    };
    let fin_before = seen
        .iter()
        .take_while(|(_, s)| !std::ptr::eq(s, rst))
        .any(|(_, s)| {
            matches!(s, Segment::Tcp { src: a, dst: b, flags, .. } if flags.fin && a == src && b == dst)
        });
    Some(if fin_before {
        format!(
            "{role} sent RST after its FIN: it had closed its socket, so the data that came after was refused (close() ends both directions; shutdown(SHUT_WR) sends the FIN and still reads)"
        )
    } else {
        format!(
            "{role} sent RST where a FIN was expected: it closed the connection with data it had not read (close() with unread bytes in its receive buffer resets the connection), or with SO_LINGER set to 0"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn tcp(src: u16, dst: u16, fin: bool, rst: bool, payload: &[u8]) -> Segment {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Segment::Tcp {
            src: at(src),
            dst: at(dst),
            flags: ::wire::Flags {
                ack: true,
                fin,
                rst,
                ..::wire::Flags::default()
            },
            seq: 1,
            ack: 1,
            window: 512,
            wscale: None,
            payload: payload.to_vec(),
            len: payload.len(),
        }
    }

    #[test]
    fn a_reset_after_a_fin_and_one_without_read_differently() {
        let ends = [End::Program(9190)];
        let after_fin = [
            (1, tcp(9190, 40000, true, false, b"")),
            (2, tcp(40000, 9190, false, false, b"Thank you\0")),
            (3, tcp(9190, 40000, false, true, b"")),
        ];
        let said = reset(&ends, &after_fin).expect("a reset");
        assert!(
            said.starts_with("your server sent RST after its FIN"),
            "{said}"
        );
        let unread = [
            (1, tcp(40000, 9190, false, false, b"more")),
            (2, tcp(9190, 40000, false, true, b"")),
        ];
        let said = reset(&ends, &unread).expect("a reset");
        assert!(said.contains("where a FIN was expected"), "{said}");
        // The checker's own reset is not the program's.
        assert_eq!(
            reset(&ends, &[(1, tcp(40000, 9190, false, true, b""))]),
            None
        );
    }
}
