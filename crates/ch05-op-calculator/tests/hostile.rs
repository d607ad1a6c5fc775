//! The calculator server when the world is hostile: clients that dribble, command
//! lines that make no sense, output nobody reads (README, "Bad requests").

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use ch05_op_calculator::encode_request;
use workbook::testing::{DEADLINE, server_with_a_full_unread_log};

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
