//! What a server does when accept(2) finds no descriptor free.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::SysError;
use crate::output::{Stream, line};

/// A pause in accepting, for when accept() fails with EMFILE (this process has as many
/// descriptors open as RLIMIT_NOFILE allows) or ENFILE (the whole system has).
///
/// The connection is not lost: the kernel completed its handshake and keeps it in the
/// listening socket's backlog queue. But it stays there, so the listening socket stays
/// readable: a level-triggered loop that goes straight back to select() or epoll_wait()
/// is woken at once, fails again, and spins at 100% CPU (writing an error line each
/// time), while an edge-triggered one hears nothing more until another client connects.
/// So the server stops watching the listening socket until a descriptor is freed (one
/// of its clients closes) or [`AcceptPause::RETRY`] has passed (ENFILE is freed by other
/// processes, whom we do not hear), then tries again; a connection that waited meanwhile
/// is accepted then. One line is logged per episode, not per attempt.
///
/// (The other known answer keeps a spare descriptor open, and when accept() fails,
/// closes it, accepts the connection and closes that at once, so the client hears a
/// refusal instead of waiting. It turns away a client that could have been served a
/// moment later, and the spare fd would shift the fd numbers the chapters narrate.)
#[derive(Debug, Default)]
pub struct AcceptPause {
    /// When accepting is to be tried again; None when it is not paused.
    retry_at: Option<Instant>,
    /// An episode is logged; it ends when accept() succeeds again.
    in_episode: bool,
}

impl AcceptPause {
    /// How long accepting pauses when no client closes meanwhile.
    pub const RETRY: Duration = Duration::from_millis(250);

    /// After accept() failed: true when for want of a descriptor, and then accepting
    /// pauses. The first failure of an episode is logged to stderr.
    pub fn out_of_descriptors(&mut self, error: &SysError) -> bool {
        if !matches!(error.errno, Errno::EMFILE | Errno::ENFILE) {
            return false;
        }
        if !self.in_episode {
            self.in_episode = true;
            line(
                Stream::Stderr,
                &format!(
                    "error: {error}: not accepting until a client leaves (or {} ms pass); \
                     new connections wait in the backlog queue",
                    Self::RETRY.as_millis()
                ),
            );
        }
        self.retry_at = Some(Instant::now() + Self::RETRY);
        true
    }

    /// accept() took a connection: an episode, if there was one, is over.
    pub fn accepted(&mut self) {
        self.retry_at = None;
        self.in_episode = false;
    }

    /// A descriptor was freed (a client closed): accepting may be tried again at once.
    pub fn descriptor_freed(&mut self) {
        self.retry_at = None;
    }

    /// True while accepting is paused: the listening socket is not to be watched.
    pub fn is_paused(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// How long a wait may last before accepting is to be tried again: the rest of the
    /// pause, or None (no limit) when accepting is not paused. (Never a zero left over
    /// from a pause that has run out: a loop waiting with it would spin.)
    pub fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        self.retry_at
            .filter(|at| now < *at)
            .map(|at| at.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_ends_when_a_descriptor_is_freed() {
        let mut pause = AcceptPause::default();
        assert!(!pause.is_paused() && pause.timeout().is_none());
        let not_fds = SysError::new("accept(3)", Errno::ECONNABORTED);
        assert!(!pause.out_of_descriptors(&not_fds));
        assert!(!pause.is_paused());
        let emfile = SysError::new("accept(3)", Errno::EMFILE);
        assert!(pause.out_of_descriptors(&emfile));
        assert!(pause.is_paused());
        assert!(pause.timeout().is_some_and(|t| t <= AcceptPause::RETRY));
        pause.descriptor_freed();
        assert!(!pause.is_paused() && pause.timeout().is_none());
        assert!(pause.out_of_descriptors(&emfile), "still out");
        assert!(pause.in_episode);
        pause.accepted();
        assert!(!pause.in_episode && !pause.is_paused());
    }
}
