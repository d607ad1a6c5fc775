//! Standard output that ends the checker quietly when its reader goes away
//! (`cargo xtask check ch04 | head`): no panic, no backtrace, and nothing a check
//! started is left running.

use std::io::Write;

/// Standard output, written whole or not at all.
#[derive(Debug)]
pub struct Out {
    stdout: std::io::Stdout,
}

impl Out {
    pub fn stdout() -> Out {
        Out {
            stdout: std::io::stdout(),
        }
    }

    /// Prints `text`. When the reader has gone (EPIPE), every check's programs are
    /// ended and the checker exits at once with the status a shell gives a program
    /// killed by SIGPIPE (141), saying nothing: the reader asked for no more.
    pub fn print(&mut self, text: &str) {
        let mut lock = self.stdout.lock();
        if let Err(e) = lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                harness::supervise::end_every_check();
                std::process::exit(141);
            }
            eprintln!("error: write the report: {e}");
            harness::supervise::end_every_check();
            std::process::exit(1);
        }
    }
}
