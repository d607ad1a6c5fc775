//! # Chapter 10: signals (시그널 핸들링)
//!
//! A signal interrupts whatever a process is doing and runs its handler: SIGALRM when an
//! alarm() goes off, SIGINT on Ctrl-C, SIGCHLD when a child ends. A handler may do only
//! *async-signal-safe* work (the program it interrupted may be in the middle of
//! malloc() or printf()), so ours set a flag and return; the main loop does the printing.
//!
//! Subcommands: `signal` (alarm every 2 s, `Time out!` three times; Ctrl-C prints `CTRL+C
//! pressed`: the book's signal.c), `sigaction` (the same with sigaction and an explicit
//! mask: sigaction.c), `remove-zombie` (a SIGCHLD handler that reaps: remove_zombie.c).
//! No subcommand: the three in turn, short.
//!
//! System calls: `sigaction`, `alarm`, `sigprocmask`, `sigsuspend`, `fork`, `waitpid`.
//!
//! How the main loop waits without missing a signal: the signals are blocked while it
//! looks at the flags, and `sigsuspend()` unblocks them and sleeps *in one step*. With
//! `pause()` instead, a signal arriving between the look and the pause would be missed
//! until the next one.
//!
//! What the book's C gets wrong: its handlers call puts() and printf(), which are not
//! async-signal-safe (a signal landing inside printf() can deadlock or corrupt stdout);
//! it sleeps with sleep(100) and relies on the signal cutting it short. Its SIGCHLD
//! handler reaps one child per signal (see ch10-multiprocess).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
use nix::sys::wait::WaitStatus;
use syscalls::process::{ForkResult, describe};
use syscalls::{Reaper, fork};
use workbook::TraceOpt;

static ALARM: AtomicBool = AtomicBool::new(false);
static INTERRUPT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_: std::ffi::c_int) {
    // Async-signal-safe: an atomic store, nothing else. The main loop prints.
    ALARM.store(true, Ordering::SeqCst);
}

extern "C" fn on_interrupt(_: std::ffi::c_int) {
    INTERRUPT.store(true, Ordering::SeqCst);
}

/// Chapter 10: signals, handlers, and reaping children from SIGCHLD.
/// With no subcommand, runs the three demos in turn, short.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Demo>,
    #[command(flatten)]
    pub trace: TraceOpt,
}

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// alarm() every SECONDS, `Time out!` three times; Ctrl-C prints `CTRL+C pressed` (signal.c)
    Signal {
        #[arg(long, default_value = "2")]
        seconds: f64,
    },
    /// The same with sigaction() and an explicit mask (sigaction.c)
    Sigaction {
        #[arg(long, default_value = "2")]
        seconds: f64,
    },
    /// Two children end; a SIGCHLD handler reaps them and their statuses are printed (remove_zombie.c)
    RemoveZombie {
        /// How long the children work (the book: 10)
        #[arg(long, default_value = "1")]
        seconds: f64,
    },
}

/// Runs the subcommand, or all three when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::Signal { seconds }) => alarms(Style::Signal, whole_seconds(seconds)?),
        Some(Demo::Sigaction { seconds }) => alarms(Style::Sigaction, whole_seconds(seconds)?),
        Some(Demo::RemoveZombie { seconds }) => remove_zombie(duration(seconds)?),
        None => {
            println!("$ ch10-signals signal --seconds 1");
            alarms(Style::Signal, 1)?;
            println!("\n$ ch10-signals sigaction --seconds 1");
            alarms(Style::Sigaction, 1)?;
            println!("\n$ ch10-signals remove-zombie --seconds 0.5");
            remove_zombie(Duration::from_millis(500))
        }
    }
}

fn duration(seconds: f64) -> anyhow::Result<Duration> {
    if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
        bail!("--seconds must be from 0 to 3600, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// alarm() counts whole seconds.
fn whole_seconds(seconds: f64) -> anyhow::Result<u32> {
    if !(seconds.is_finite() && (1.0..=3600.0).contains(&seconds)) {
        bail!(
            "--seconds must be a whole number from 1 to 3600 (alarm() counts seconds), not {seconds}"
        );
    }
    Ok(seconds.round() as u32)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// signal(): the old call, a handler and nothing else.
    Signal,
    /// sigaction(): a handler, a mask of signals blocked while it runs, flags.
    Sigaction,
}

fn install(style: Style) -> anyhow::Result<()> {
    match style {
        Style::Signal => {
            // SAFETY: the handlers only store to atomics (async-signal-safe).
            unsafe {
                nix::sys::signal::signal(Signal::SIGALRM, SigHandler::Handler(on_alarm))
                    .context("signal(SIGALRM)")?;
                nix::sys::signal::signal(Signal::SIGINT, SigHandler::Handler(on_interrupt))
                    .context("signal(SIGINT)")?;
            }
            syscalls::trace::emit("signal(SIGALRM, timeout) = 0");
            syscalls::trace::emit("signal(SIGINT, keycontrol) = 0");
        }
        Style::Sigaction => {
            // While the alarm handler runs, SIGINT waits (the mask), and the other way round.
            let mut mask = SigSet::empty();
            mask.add(Signal::SIGINT);
            mask.add(Signal::SIGALRM);
            for (signal, handler) in [
                (Signal::SIGALRM, on_alarm as extern "C" fn(_)),
                (Signal::SIGINT, on_interrupt),
            ] {
                let action = SigAction::new(SigHandler::Handler(handler), SaFlags::empty(), mask);
                // SAFETY: the handlers only store to atomics (async-signal-safe).
                unsafe { sigaction(signal, &action) }
                    .with_context(|| format!("sigaction({signal})"))?;
                syscalls::trace::emit(&format!(
                    "sigaction({signal}, handler, mask {{SIGALRM, SIGINT}}) = 0"
                ));
            }
        }
    }
    Ok(())
}

/// The alarm demo: three timeouts; Ctrl-C is reported as it comes.
fn alarms(style: Style, every: u32) -> anyhow::Result<()> {
    ALARM.store(false, Ordering::SeqCst);
    INTERRUPT.store(false, Ordering::SeqCst);
    install(style)?;
    // Block both while we look at the flags; sigsuspend() below unblocks and waits at once.
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGALRM);
    blocked.add(Signal::SIGINT);
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old)).context("sigprocmask")?;
    nix::unistd::alarm::set(every);
    syscalls::trace::emit(&format!("alarm({every}) = 0"));
    let mut timeouts = 0;
    while timeouts < 3 {
        println!("wait...");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // Sleep until a signal arrives, with the old mask (both unblocked) meanwhile.
        let _ = old.suspend();
        if INTERRUPT.swap(false, Ordering::SeqCst) {
            println!("CTRL+C pressed");
        }
        if ALARM.swap(false, Ordering::SeqCst) {
            println!("Time out!");
            timeouts += 1;
            if timeouts < 3 {
                nix::unistd::alarm::set(every);
            }
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None).context("sigprocmask")?;
    // Back to the default actions: Ctrl-C ends the program again.
    for signal in [Signal::SIGALRM, Signal::SIGINT] {
        // SAFETY: SIG_DFL installs no handler code.
        unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }
            .with_context(|| format!("signal({signal}, SIG_DFL)"))?;
    }
    Ok(())
}

/// The book's remove_zombie.c: children reaped by a SIGCHLD handler.
fn remove_zombie(work: Duration) -> anyhow::Result<()> {
    let reaper = Reaper::install()?;
    let mut children = Vec::new();
    for code in [12, 24] {
        // SAFETY: this process has one thread.
        match unsafe { fork() }? {
            ForkResult::Child => {
                println!("Hi! I'm child process");
                std::thread::sleep(work);
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(code);
            }
            ForkResult::Parent { child } => {
                println!("Child proc id: {child}");
                children.push(child);
            }
        }
    }
    let mut removed = 0;
    while removed < children.len() {
        println!("wait...");
        // The handler reaps; a signal cuts the sleep short, as in the book.
        std::thread::sleep(Duration::from_millis(100));
        for (pid, status) in reaper.reaped() {
            println!("removed proc id: {pid}");
            match status {
                WaitStatus::Exited(_, code) => println!("Child send: {code}"),
                other => println!("the child {}", describe(&other)),
            }
            removed += 1;
        }
    }
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { nix::sys::signal::signal(Signal::SIGCHLD, SigHandler::SigDfl) }
        .context("signal(SIGCHLD, SIG_DFL)")?;
    Ok(())
}
