//! POSIX unnamed semaphores: sem_init(3), sem_wait(3), sem_post(3), sem_destroy(3), as
//! the book's `semaphore.c` uses them (ch18).
//!
//! These are C library calls, not system calls: a semaphore is a counter in memory,
//! changed with atomic instructions, and sem_wait() makes the futex(2) system call only
//! when it must sleep (the count is 0), sem_post() only when someone sleeps. nix has no
//! wrapper for them, so `libc` it is.

use std::cell::UnsafeCell;

use nix::errno::Errno;

use crate::error::SysResult;
use crate::trace::{start, traced, zero};

/// A semaphore shared by the threads of one process (`pshared` 0). It must not move
/// once initialised, so it lives in a `Box` and is shared by reference or `Arc`.
pub struct Semaphore {
    sem: UnsafeCell<libc::sem_t>,
    name: &'static str,
}

// SAFETY: a sem_t is made to be used by many threads at once; every access goes through
// sem_wait/sem_post/sem_destroy, which synchronise themselves.
unsafe impl Sync for Semaphore {}
// SAFETY: a process-private sem_t holds no thread-specific state; it may be dropped
// (destroyed) on any thread once no thread waits on it.
unsafe impl Send for Semaphore {}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Semaphore({})", self.name)
    }
}

fn result(ret: libc::c_int) -> Result<(), Errno> {
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

impl Semaphore {
    /// `sem_init(&sem, 0, value)`: a semaphore whose count starts at `value`. `name` is
    /// how the narration shows it (`&sem_one`).
    pub fn new(name: &'static str, value: u32) -> SysResult<Box<Semaphore>> {
        let sem = Box::new(Semaphore {
            // SAFETY: sem_t is plain data; sem_init below gives it its value.
            sem: UnsafeCell::new(unsafe { std::mem::zeroed() }),
            name,
        });
        let started = start();
        // SAFETY: the pointer is to memory this Box owns and will not move; pshared 0
        // keeps the semaphore to this process's threads.
        let ret = unsafe { libc::sem_init(sem.sem.get(), 0, value) };
        traced(
            started,
            |_| format!("sem_init({name}, 0, {value})"),
            result(ret),
            zero,
        )?;
        Ok(sem)
    }

    /// `sem_wait(&sem)`: takes one from the count, first waiting while it is 0. Retried
    /// when a signal interrupts the wait.
    pub fn wait(&self) -> SysResult<()> {
        loop {
            let started = start();
            // SAFETY: the semaphore was initialised by `new` and is not destroyed before
            // drop.
            let ret = unsafe { libc::sem_wait(self.sem.get()) };
            match result(ret) {
                Err(Errno::EINTR) => continue,
                r => return traced(started, |_| format!("sem_wait({})", self.name), r, zero),
            }
        }
    }

    /// `sem_post(&sem)`: adds one to the count, waking a thread that waits.
    pub fn post(&self) -> SysResult<()> {
        let started = start();
        // SAFETY: as in `wait`.
        let ret = unsafe { libc::sem_post(self.sem.get()) };
        traced(
            started,
            |_| format!("sem_post({})", self.name),
            result(ret),
            zero,
        )
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: initialised by `new`; `&mut self` means no thread uses it any more.
        unsafe { libc::sem_destroy(self.sem.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two semaphores make two threads take turns: each value is consumed exactly once.
    #[test]
    fn two_semaphores_alternate_a_producer_and_a_consumer() {
        let empty = Semaphore::new("&empty", 1).expect("sem_init failed");
        let full = Semaphore::new("&full", 0).expect("sem_init failed");
        let slot = std::sync::atomic::AtomicU64::new(0);
        let sum = std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=1000 {
                    empty.wait().expect("sem_wait failed");
                    slot.store(v, std::sync::atomic::Ordering::Relaxed);
                    full.post().expect("sem_post failed");
                }
            });
            let consumer = s.spawn(|| {
                let mut sum = 0;
                for _ in 0..1000 {
                    full.wait().expect("sem_wait failed");
                    sum += slot.load(std::sync::atomic::Ordering::Relaxed);
                    empty.post().expect("sem_post failed");
                }
                sum
            });
            consumer.join().expect("consumer")
        });
        assert_eq!(sum, 500_500);
    }
}
