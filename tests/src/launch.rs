//! How a program under test starts: as a terminal would start it, whatever the checker
//! has done to itself.
//!
//! The checker changes its own state: `cargo xtask check` blocks SIGINT, SIGTERM and
//! SIGHUP in every thread (a signal thread takes them with sigwait), raises its
//! open-file limit for checks with many connections, and runs under cargo, which adds
//! `CARGO_*` variables to its environment; a test binary runs under libtest. A child
//! inherits the signal mask, ignored dispositions and resource limits across exec, so
//! without care a student's server would start with SIGTERM blocked (a correct
//! `graceful-stop` then fails) or with 20,000 descriptors where their shell gives 1,024.
//!
//! So every program a check starts is made from one place, [`command`], which in the
//! child, between fork and exec, puts back the state a shell gives a new job:
//!
//! * an empty signal mask;
//! * every signal's disposition at its default (SIGPIPE included: Rust and Python
//!   ignore it in themselves, a C program expects it to kill);
//! * the resource limits the checker had when it started ([`remember`]), before it
//!   raised any, unless a check lowers one for itself ([`Limits`]);
//! * an environment without cargo's and libtest's variables;
//! * for ch14 only, the host of a private network it runs on ([`Limits::netns`]).
//!
//! The path that grades a student (`cargo xtask check`) and the path of the tests
//! (libtest threads in a conformance binary) therefore start programs identically, by
//! construction.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The resource limits restored in every program under test.
const RESOURCES: [Resource; 6] = [
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_STACK,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_AS,
    Resource::RLIMIT_FSIZE,
];

/// One resource limit: soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

static AT_START: OnceLock<Vec<Limit>> = OnceLock::new();

/// Records the limits this process was started with, once. Call it before anything
/// raises a limit; [`raise_own_open_file_limit`] calls it first, so the record always
/// predates our own changes.
pub fn remember() -> &'static [Limit] {
    AT_START.get_or_init(|| {
        RESOURCES
            .iter()
            .filter_map(|&resource| {
                let (soft, hard) = getrlimit(resource).ok()?;
                Some(Limit {
                    resource,
                    soft,
                    hard,
                })
            })
            .collect()
    })
}

/// The open-file limit the user's shell gave us: what a program under test gets.
pub fn shell_open_files() -> (u64, u64) {
    remember()
        .iter()
        .find(|l| l.resource == Resource::RLIMIT_NOFILE)
        .map_or((1024, 1024), |l| (l.soft, l.hard))
}

/// Raises this process's own open-file soft limit to its hard limit (checks with a
/// thousand connections need a descriptor per connection on our side too). Programs
/// under test never see it: they get [`shell_open_files`]. Returns (soft, hard) now.
pub fn raise_own_open_file_limit() -> (u64, u64) {
    remember();
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return shell_open_files();
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return (hard, hard);
    }
    (soft, hard)
}

/// Limits a check sets for its own programs, over the shell's (a check of what a
/// server does at EMFILE runs it with a few dozen descriptors; the check's title says
/// so). Each sets the soft and the hard limit, so the program cannot raise it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
    /// RLIMIT_NPROC (only a non-root user is held to it).
    pub processes: Option<u64>,
    /// Not a limit but a place: the host of a private network the program runs on
    /// (ch14, whose multicast and broadcast need a network of their own), as the
    /// descriptors of its user and network namespaces (`workbook::netns::Host::fds`),
    /// which the check keeps open. The child joins them first thing after fork.
    pub netns: Option<(RawFd, RawFd)>,
}

/// Variables of the checker's own environment that a shell would not give a program:
/// cargo's (`CARGO`, `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...), libtest's, and the
/// workbook's own settings (`WORKBOOK_TRACE`, `WORKBOOK_BLESS`, ...).
fn is_ours(key: &str) -> bool {
    key == "CARGO"
        || key.starts_with("CARGO_")
        || key.starts_with("__CARGO")
        || key.starts_with("RUST_TEST_")
        || key.starts_with("WORKBOOK_")
}

/// A command for `argv` that starts in the state a shell gives a new job (see the
/// module's documentation), with `limits` over the shell's.
pub fn command(argv: &[String], limits: &Limits) -> Command {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_ours) {
            command.env_remove(key);
        }
    }
    let mut restore: Vec<Limit> = remember().to_vec();
    for (resource, n) in [
        (Resource::RLIMIT_NOFILE, limits.open_files),
        (Resource::RLIMIT_NPROC, limits.processes),
    ] {
        if let Some(n) = n
            && let Some(l) = restore.iter_mut().find(|l| l.resource == resource)
        {
            l.soft = n.min(l.hard);
            l.hard = l.soft;
        }
    }
    let rtmax = libc::SIGRTMAX();
    let netns = limits.netns;
    // SAFETY: between fork and exec the closure only makes async-signal-safe calls
    // (setns, sigprocmask, signal, setrlimit, prctl) and allocates nothing: `restore` was
    // built before the fork and is only read.
    unsafe {
        command.pre_exec(move || {
            // On a host of a private network (ch14): its namespaces first, so that
            // everything after is done as the program will run.
            if let Some((user, net)) = netns {
                workbook::netns::join(user, net)?;
            }
            // If the checker dies (Ctrl-C on `cargo xtask check`, a killed test), the
            // kernel kills what it started: PR_SET_PDEATHSIG fires when the thread that
            // spawned the program exits, and each check spawns from the thread that runs
            // it to the end.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            for signal in 1..=rtmax {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    default_disposition(signal);
                }
            }
            for l in &restore {
                // Lowering is always allowed; a limit we never raised is left as is.
                let _ = setrlimit(l.resource, l.soft, l.hard);
            }
            Ok(())
        });
    }
    command
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 alike), for rt_sigaction(2).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Puts `signal`'s disposition back to SIG_DFL with the raw rt_sigaction(2) system
/// call: glibc's signal() refuses the signals it reserves for itself (32 and 33), and an
/// ignored one of those is inherited too. (nix has no raw rt_sigaction; libc's syscall()
/// it is.) Async-signal-safe: one system call, nothing allocated.
fn default_disposition(signal: libc::c_int) {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `action` is a valid kernel sigaction that lives across the call; the old
    // action is not asked for; the size is the kernel's sigset (8 bytes).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &raw const action,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child started through [`command`] sees an empty mask, no ignored signal and the
    /// limit we started with, although this process blocks and ignores signals and has
    /// raised its limit.
    #[test]
    fn a_child_starts_as_a_shell_would_start_it() {
        use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
        let (shell_soft, _) = shell_open_files();
        let wanted_soft = shell_soft.min(512);
        // Run in a thread of its own: the mask is per thread, and libtest's other
        // threads must not be disturbed.
        let output = std::thread::spawn(move || {
            let mut set = SigSet::empty();
            set.add(Signal::SIGTERM);
            set.add(Signal::SIGINT);
            set.thread_block().expect("pthread_sigmask");
            // SAFETY: SIG_IGN installs no handler code.
            unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.expect("signal");
            raise_own_open_file_limit();
            // cat, not a shell: dash resets its signal mask and would hide a leak.
            let argv: Vec<String> = ["cat", "/proc/self/status", "/proc/self/limits"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let out = command(
                &argv,
                &Limits {
                    open_files: Some(wanted_soft),
                    ..Limits::default()
                },
            )
            .output()
            .expect("run sh");
            // SAFETY: back to the default; no handler code involved.
            unsafe { signal(Signal::SIGHUP, SigHandler::SigDfl) }.expect("signal");
            out
        })
        .join()
        .expect("thread");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("SigBlk:\t0000000000000000"),
            "mask inherited: {text}"
        );
        assert!(
            text.contains("SigIgn:\t0000000000000000"),
            "ignored signal inherited: {text}"
        );
        let open_files = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .expect("Max open files in /proc/self/limits");
        assert_eq!(open_files, wanted_soft.to_string(), "{text}");
    }
}
