//! The file server and client when the file is not what it was said to be: a directory,
//! a FIFO, a file deleted after the server started, a server that sends nothing (README,
//! "When things go wrong").

use std::time::Duration;

use assert_cmd::Command;
use harness::hostile::Launch;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch07-half-close");

/// `server 0 PATH` must exit 1 with one line naming what PATH is, before it listens.
fn assert_refused_before_listening(path: &std::path::Path, kind: &str) {
    Command::new(BIN)
        .args(["server", "0"])
        .arg(path)
        .timeout(Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("listening").not())
        .stderr(
            predicate::str::is_match(format!("^error: .* is {kind}, not a regular file[^\n]*\n$"))
                .unwrap(),
        );
}

/// A directory opens, but read() fails with EISDIR: the server used to listen anyway and
/// send nothing, and its client said `Received file data`.
#[test]
fn a_directory_is_refused_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_refused_before_listening(dir.path(), "a directory");
}

/// open() of a FIFO waits for a writer, which may never come: the server used to hang
/// before it listened. Opened with O_NONBLOCK, then fstat()ed, it is refused at once.
#[test]
fn a_fifo_is_refused_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    assert_refused_before_listening(&fifo, "a FIFO \\(named pipe\\)");
}

/// A file deleted after the server started cannot be sent: the server resets the
/// connection (instead of ending it as if the file were complete), the client reports an
/// incomplete file and exits 1, and the server goes on.
#[test]
fn a_file_deleted_after_start_is_not_reported_as_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data.bin");
    std::fs::write(&file, b"soon gone").expect("write the file");
    let mut server = Launch::new(BIN, &["server", "0", file.to_str().expect("utf-8")]).start();
    std::fs::remove_file(&file).expect("remove the file");
    let out = dir.path().join("received.bin");
    Command::new(BIN)
        .args(["client", "127.0.0.1", &server.addr().port().to_string()])
        .arg(&out)
        .timeout(Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Received file data").not())
        .stderr(predicate::str::contains("broke off after 0 bytes"));
    server.assert_running("a client whose file was gone");
    assert!(
        server.stderr_text().contains("ENOENT"),
        "{}",
        server.stderr_text()
    );
}

/// A server (here the test's own) that accepts and closes without sending a byte: the
/// client must not say it received a file. An empty file looks the same, and is said to
/// be so.
#[test]
fn a_client_sent_nothing_does_not_claim_a_file() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind failed");
    let port = listener.local_addr().expect("local_addr").port();
    let closer = std::thread::spawn(move || drop(listener.accept().expect("accept failed")));
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(BIN)
        .args(["client", "127.0.0.1", &port.to_string()])
        .arg(dir.path().join("received.bin"))
        .timeout(Duration::from_secs(10))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Received file data").not())
        .stderr(predicate::str::contains("without sending anything"));
    closer.join().expect("the test's server");
}
