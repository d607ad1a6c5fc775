//! What a non-blocking socket could not take yet, up to a limit.

use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::error::SysResult;
use crate::io::write;

/// Bytes waiting to be written to a non-blocking socket, at most `limit` of them.
///
/// A multiplexing server never blocks on one client's write, so what the client's
/// socket cannot take yet waits here; without a limit, a client that never reads would
/// make the server hold everything sent to it. The limit is the server's choice of what
/// to do then: stop reading from that client until it reads (echo: backpressure, with
/// [`Outbox::room`] as the most to read), or disconnect it ([`Outbox::push`] refuses
/// what does not fit: the chat room).
#[derive(Debug)]
pub struct Outbox {
    buf: Vec<u8>,
    limit: usize,
}

/// [`Outbox::push`] refused bytes that would take the outbox over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull {
    /// How many bytes were waiting already.
    pub waiting: usize,
    /// The outbox's limit.
    pub limit: usize,
}

impl std::fmt::Display for OutboxFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not reading: {} bytes already waiting for it, the limit is {}",
            self.waiting, self.limit
        )
    }
}

impl Outbox {
    /// An empty outbox that holds at most `limit` bytes.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            buf: Vec::new(),
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many more bytes fit.
    pub fn room(&self) -> usize {
        self.limit - self.buf.len()
    }

    /// True when nothing more fits.
    pub fn is_full(&self) -> bool {
        self.room() == 0
    }

    /// Adds all of `bytes`, or none of them when they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), OutboxFull> {
        if bytes.len() > self.room() {
            return Err(OutboxFull {
                waiting: self.buf.len(),
                limit: self.limit,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes as much as the socket takes now (until EAGAIN). Returns true when
    /// everything is out.
    pub fn flush(&mut self, fd: impl AsFd) -> SysResult<bool> {
        let fd = fd.as_fd();
        while !self.buf.is_empty() {
            match write(fd, &self.buf) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(e) if e.errno == Errno::EAGAIN => return Ok(false),
                Err(e) if e.is_interrupted() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds() {
        let mut outbox = Outbox::new(8);
        outbox.push(b"hello").expect("fits");
        assert_eq!(outbox.room(), 3);
        assert_eq!(
            outbox.push(b"world"),
            Err(OutboxFull {
                waiting: 5,
                limit: 8
            })
        );
        assert_eq!(outbox.len(), 5, "a refused push adds nothing");
        outbox.push(b"abc").expect("fits exactly");
        assert!(outbox.is_full());
    }

    #[test]
    fn flush_writes_everything_a_pipe_takes() {
        let (r, w) = nix::unistd::pipe().expect("pipe failed");
        let mut outbox = Outbox::new(64);
        outbox.push(b"queued").expect("fits");
        assert!(outbox.flush(&w).expect("flush failed"));
        assert!(outbox.is_empty());
        let mut buf = [0u8; 16];
        assert_eq!(crate::io::read(&r, &mut buf).expect("read failed"), 6);
    }
}
