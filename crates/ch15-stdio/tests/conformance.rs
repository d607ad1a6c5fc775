//! ch15's server and client checks on our binary, the gallery's ch15 submissions, and
//! the copies' counts.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch15-stdio");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch15", "ch15-stdio", BIN);
}

/// The demo: both copies measured, the streams' fds, and the echo over streams.
#[test]
fn demo_measures_both_copies_and_echoes() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("fewer system calls"))
        .stdout(predicate::str::contains("[todes] First file descriptor: 3"))
        .stdout(predicate::str::contains(
            "[client] Message from server: Hello, buffered world!",
        ));
}

/// The counts are the kernel's: one read() and one write() per byte, against one per
/// 8 KiB buffer.
#[test]
fn the_buffered_copy_makes_a_hundredth_of_the_calls() {
    let count = |copy: &str| -> u64 {
        let out = Command::new(BIN)
            .args([copy, "--bytes", "20000"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .expect("run the copy");
        assert!(out.status.success(), "{copy}: {out:?}");
        // "...: 20000 bytes copied with R read calls and W write calls, in T s"
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "with").expect("a count");
        let number = |i: usize| -> u64 { words[i].parse().expect("a number") };
        number(at + 1) + number(at + 5)
    };
    let (sys, std) = (count("syscpy"), count("stdcpy"));
    assert!(sys >= 40_000, "syscpy made {sys} calls for 20,000 bytes");
    assert!(std * 100 < sys, "stdcpy made {std} calls, syscpy {sys}");
}
