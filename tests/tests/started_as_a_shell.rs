//! The test-all path starts a program under test as a shell would, whatever the test
//! process has done to itself: this binary blocks the signals `cargo xtask check`
//! blocks, ignores SIGPIPE (as every Rust program does) and SIGHUP, and raises its own
//! open-file limit; the probe must see none of it. (`xtask/tests/cli.rs` asserts the
//! same through `cargo xtask check`.)

use harness::testing::{assert_started_as_a_shell_starts, build_probe, grade_template};
use harness::verdict::Verdict;

#[test]
fn a_program_under_test_starts_with_an_empty_mask_default_dispositions_and_the_shells_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(probe) = build_probe(dir.path()) else {
        return;
    };
    let record = dir.path().join("started.txt");
    let (shell_soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("getrlimit");
    // A thread of its own: the mask is per thread, and the checker's checks start their
    // programs from the thread that runs them, as here.
    let records = std::thread::spawn(move || {
        use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        set.thread_block().expect("pthread_sigmask");
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.expect("signal");
        harness::launch::raise_own_open_file_limit();
        let template = format!("{} {{port}} {}", probe.display(), record.display());
        let records = grade_template("ch04", "server", &template, Some("ch04/echo-line"));
        (records, record)
    })
    .join()
    .expect("the grading thread");
    let (records, record) = records;
    assert!(
        records.iter().all(|r| matches!(r.verdict, Verdict::Pass)),
        "the probe echoes: {records:?}"
    );
    assert_started_as_a_shell_starts(&record, shell_soft);
}
