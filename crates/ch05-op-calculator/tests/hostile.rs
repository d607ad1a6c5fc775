//! The calculator server when the world is hostile: clients that dribble, command
//! lines that make no sense, output nobody reads (README, "Bad requests").

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use assert_cmd::Command;
use ch05_op_calculator::encode_request;
use harness::hostile::{DEADLINE, Launch, server_with_a_full_unread_log};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch05-op-calculator");

/// Asks `3 + 5 + 7` and returns the answer, or why there was none.
fn ask(addr: SocketAddr) -> Result<i32, String> {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("SO_RCVTIMEO");
    stream
        .write_all(&encode_request(&[3, 5, 7], b'+'))
        .map_err(|e| format!("write: {e}"))?;
    let mut result = [0u8; 4];
    stream
        .read_exact(&mut result)
        .map_err(|e| format!("read the result: {e}"))?;
    Ok(i32::from_le_bytes(result))
}

/// A server whose stderr nobody reads keeps serving: each refused request logs a line,
/// and once the pipe is full they are dropped and counted, instead of stopping the
/// server in write().
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    // Each connection closed before its count byte is one error line, ~90 bytes.
    let server = server_with_a_full_unread_log(BIN, &["calc-server", "0"]);
    assert_eq!(ask(server.addr()), Ok(15), "after 150 refused requests");
}

/// `--read-timeout` is for the whole request: a client that sends one byte every 0.2 s,
/// each well within the 0.5 s, is cut off once 0.5 s have passed in all (it used to hold
/// the iterative server for as long as it liked), and the next client is served.
#[test]
fn a_dribbling_client_is_cut_off_at_the_request_deadline() {
    let mut server = Launch::new(BIN, &["calc-server", "0", "--read-timeout", "0.5"]).start();
    let request = encode_request(&[3, 5, 7], b'+');
    let mut stream = TcpStream::connect_timeout(&server.addr(), DEADLINE).expect("connect");
    // The pause between bytes is the lesson (a client that dribbles), and it is a read:
    // it ends at once when the server closes.
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("SO_RCVTIMEO");
    let mut sent = 0;
    let closed = loop {
        if sent == request.len() {
            break false;
        }
        if stream.write_all(&request[sent..=sent]).is_err() {
            break true;
        }
        sent += 1;
        match stream.read(&mut [0u8; 4]) {
            Ok(0) => break true,
            Ok(_) => break false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    assert!(
        closed,
        "the server waited for all {} bytes sent one per 0.2 s (deadline 0.5 s)",
        request.len()
    );
    assert!(sent < request.len(), "closed after {sent} bytes");
    assert_eq!(
        ask(server.addr()),
        Ok(15),
        "the next client after the dribbler"
    );
    server.assert_running("a dribbling client");
    assert!(
        server
            .stderr_text()
            .contains("by the deadline for the whole request"),
        "{}",
        server.stderr_text()
    );
}

/// `--read-timeout` must be a finite number of seconds from 0.001 to 3600: anything else
/// is a command line clap rejects, exit 2, saying the range. (1e20 used to panic, and
/// 0.0000001 became SO_RCVTIMEO's 0: no timeout at all.)
#[test]
fn a_read_timeout_out_of_range_is_a_clear_error() {
    for bad in ["1e20", "0.0000001", "0", "-1", "nan", "inf", "three"] {
        Command::new(BIN)
            .args(["calc-server", "0", &format!("--read-timeout={bad}")])
            .timeout(Duration::from_secs(10))
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains("--read-timeout"))
            .stderr(predicate::str::contains("from 0.001 to 3600"));
    }
}
