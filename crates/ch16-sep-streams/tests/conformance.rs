//! ch16's server checks on our binary, the gallery's ch16 submissions, and the demos.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch16-sep-streams");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch16", "ch16-sep-streams", BIN);
}

/// The demo: the book's sep_serv loses the client's reply, sep_serv2 prints it.
#[test]
fn demo_loses_the_reply_then_hears_it() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("[sep-clnt] You are awesome!"))
        .stdout(predicate::str::contains(
            "[sep-serv] the client's reply is lost: read(4, 1024): EBADF",
        ))
        .stdout(predicate::str::contains(
            "[sep-serv2] FROM CLIENT: Thank you!",
        ));
}

/// dup() and dup2(): three fds for one stdout; a socket's copy closed ends nothing,
/// shutdown() ends its direction.
#[test]
fn dup_copies_and_what_closing_one_does() {
    Command::new(BIN)
        .arg("dup")
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "fd1=3, fd2=7\nHi~! \nNice day~ \nHi~! \n",
        ))
        .stdout(predicate::str::contains(
            "the other end sees nothing, the connection is open through the other fd",
        ))
        .stdout(predicate::str::contains("the answer arrives: answer"));
}
