//! ch11's store-server checks on our binary, the gallery's ch11 submissions, and the
//! pipe demos.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch11-pipes");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch11", "ch11-pipes", BIN);
}

/// The demo: the pipe programs, then three clients whose lines all end up in the file.
#[test]
fn demo_stores_every_client_line() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("[pipe1] Who are you?"))
        .stdout(predicate::str::contains(
            "[pipe3] Child proc output: Thank you for your message",
        ))
        .stdout(predicate::str::contains("  hello from client one"))
        .stdout(predicate::str::contains("  hello from client three"));
}

/// One pipe both ways without the sleep: whoever reads first gets the child's message,
/// and the demo says which, and ends either way.
#[test]
fn pipe2_without_sleep_ends_and_says_who_read_first() {
    Command::new(BIN)
        .args(["pipe2", "--no-sleep"])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .success()
        .stdout(predicate::str::contains("one pipe, two readers: "));
}

/// A file that cannot be created is a one-line error before the server listens.
#[test]
fn an_unwritable_file_fails_at_start_up() {
    Command::new(BIN)
        .args(["echo-storeserv", "0", "/no/such/dir/echomsg.txt"])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "error: open(\"/no/such/dir/echomsg.txt\", O_WRONLY|O_CREAT|O_TRUNC, 0644): ENOENT: No such file or directory\n",
        );
}
