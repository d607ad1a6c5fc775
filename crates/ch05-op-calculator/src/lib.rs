//! # Chapter 5: an application protocol, the operand calculator
//!
//! TCP carries bytes; where one request ends is for the application to say. The book's
//! calculator protocol says it with counts: the client sends
//!
//! ```text
//! 1 byte            operand count N (1..=100 here)
//! N x 4 bytes       operands, signed 32-bit, little-endian
//! 1 byte            operator: '+', '-' or '*'
//! ```
//!
//! and the server answers with one signed 32-bit result, little-endian. The server
//! reads exactly 1 byte, then exactly 4N+1 bytes, however the client's writes were cut.
//!
//! Byte order: the book sends `int`s as they lie in memory, host byte order, which on
//! the group's x86 and ARM machines is little-endian. We write little-endian explicitly
//! (`i32::to_le_bytes`), so our programs talk to the book's on those machines and stay
//! correct on a big-endian one. A protocol must fix its byte order (ch03); this one fixes
//! little-endian where most Internet protocols fix big-endian (network byte order).
//!
//! System calls: server `socket`, `bind`, `listen`, `accept`, `setsockopt(SO_RCVTIMEO)`
//! (to what is left of the request's deadline, before each read), `read` until the count
//! is reached, `write`, `close`; client `socket`, `connect`,
//! `write`, `read` until 4 bytes, `close`.
//!
//! What the book's C gets wrong: its server loops `while (recv_len < n) recv_len +=
//! read(...)`, and read() returns 0 forever once a client closes half-way: the server
//! spins at 100% CPU and never serves anyone again. It trusts the count byte (a count
//! of 0, or one larger than its 1024-byte buffer holds), answers an unknown operator
//! with an uninitialised `int`, and waits forever for a client that stalls. Ours reads
//! with one deadline for the whole request (a timeout per read would let a client that
//! sends a byte at a time hold it for ever), checks every field, logs one line, closes that client and serves
//! the next; overflow wraps as the C `int` does in practice (two's complement).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    Errno, StopSignals, SysError, accept, bind, close, connect, getsockname, ignore_sigpipe,
    listen, read, set_recv_timeout, tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// The most operands a request may carry. The count is one byte, so at most 255 fit on
/// the wire; the book's 1024-byte buffer would hold 255. A limit of our own keeps a
/// request small and makes "too many" a clear error.
pub const MAX_OPERANDS: u8 = 100;

/// Size of one operand and of the result.
pub const OPSZ: usize = 4;

/// Chapter 5: an application protocol on TCP, the operand calculator.
/// With no subcommand, runs a demo: the server, then a few calculations.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Role>,
    #[command(flatten)]
    pub trace: TraceOpt,
    #[command(flatten)]
    pub wire: WireOpt,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// Calculator server: one request per connection, clients one after another (op_server)
    CalcServer {
        #[command(flatten)]
        opts: ServerOpts,
        /// How long a client may take to send its whole request, from 0.001 to 3600
        #[arg(long, default_value = "3", value_name = "SECONDS", value_parser = request_deadline)]
        read_timeout: Duration,
    },
    /// Calculator client: asks for operands and an operator, prints the result (op_client)
    CalcClient {
        #[command(flatten)]
        opts: ClientOpts,
        /// Operator for a non-interactive run: +, - or *
        #[arg(long, requires = "operands")]
        operator: Option<char>,
        /// Operands for a non-interactive run, e.g. `--operator '*' 3 -4 5`
        #[arg(allow_negative_numbers = true)]
        operands: Vec<i32>,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::CalcServer { opts, read_timeout }) => server(&opts, read_timeout),
        Some(Role::CalcClient {
            opts,
            operator,
            operands,
        }) => {
            let addr = opts.addr()?;
            match operator {
                Some(op) => client_once(addr, &operands, op),
                None if operands.is_empty() => client_interactive(addr),
                None => bail!("give --operator with the operands"),
            }
        }
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// The longest `--read-timeout`: an hour is already more than any client should get.
pub const MAX_REQUEST_DEADLINE: Duration = Duration::from_secs(3600);

/// The shortest: a millisecond. Shorter would be no time to send anything, and a few
/// nanoseconds once became SO_RCVTIMEO's 0, which means no timeout at all.
pub const MIN_REQUEST_DEADLINE: Duration = Duration::from_millis(1);

/// `--read-timeout`'s parser: seconds, a finite number within the limits above. (clap
/// rejects anything else with a one-line error and exit 2; `Duration::from_secs_f64`
/// would have panicked on 1e20.)
fn request_deadline(text: &str) -> Result<Duration, String> {
    let range = format!(
        "a number of seconds from {} to {}",
        MIN_REQUEST_DEADLINE.as_secs_f64(),
        MAX_REQUEST_DEADLINE.as_secs()
    );
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number: give {range}"))?;
    if !seconds.is_finite()
        || seconds < MIN_REQUEST_DEADLINE.as_secs_f64()
        || seconds > MAX_REQUEST_DEADLINE.as_secs_f64()
    {
        return Err(format!("{text} is out of range: give {range}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A request on the wire.
pub fn encode_request(operands: &[i32], operator: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + operands.len() * OPSZ);
    out.push(operands.len() as u8);
    for x in operands {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.push(operator);
    out
}

/// The calculation, wrapping on overflow as the C `int` does in practice.
pub fn calculate(operands: &[i32], operator: u8) -> Option<i32> {
    let (first, rest) = operands.split_first()?;
    let op: fn(i32, i32) -> i32 = match operator {
        b'+' => i32::wrapping_add,
        b'-' => i32::wrapping_sub,
        b'*' => i32::wrapping_mul,
        _ => return None,
    };
    Some(rest.iter().fold(*first, |acc, x| op(acc, *x)))
}

/// Why a request was refused. Each ends that client with one log line.
#[derive(Debug)]
enum BadRequest {
    /// The client closed before the request was whole.
    CutShort {
        got: usize,
        want: usize,
    },
    /// The request was not whole by its deadline.
    Stalled {
        got: usize,
        want: usize,
    },
    CountZero,
    TooManyOperands(u8),
    UnknownOperator(u8),
    Io(SysError),
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::CutShort { got, want } => write!(
                f,
                "request cut short: the client closed after {got} of {want} bytes"
            ),
            BadRequest::Stalled { got, want } => write!(
                f,
                "request stalled: {got} of {want} bytes by the deadline for the whole request"
            ),
            BadRequest::CountZero => write!(f, "operand count 0"),
            BadRequest::TooManyOperands(n) => {
                write!(f, "operand count {n} is over the limit of {MAX_OPERANDS}")
            }
            BadRequest::UnknownOperator(op) => write!(
                f,
                "unknown operator {:?} (byte {op:#04x}); expected +, - or *",
                *op as char
            ),
            BadRequest::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads exactly `buf.len()` bytes, as many read() calls as it takes, all before
/// `deadline`. Counts what came so far into `got` for the error message.
///
/// The deadline is for the whole request, not for each read: SO_RCVTIMEO alone bounds
/// one read(), and a client sending a byte just before each timeout would hold the
/// server for ever. So before each read the timeout is set to what is left.
fn read_exact(
    fd: &OwnedFd,
    buf: &mut [u8],
    got_before: usize,
    want: usize,
    deadline: Instant,
) -> Result<(), BadRequest> {
    let mut filled = 0;
    while filled < buf.len() {
        let stalled = BadRequest::Stalled {
            got: got_before + filled,
            want,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(stalled);
        }
        set_recv_timeout(fd, left).map_err(BadRequest::Io)?;
        match read(fd, &mut buf[filled..]) {
            // 0 is end of stream: the book's loop adds 0 forever here and spins.
            Ok(0) => {
                return Err(BadRequest::CutShort {
                    got: got_before + filled,
                    want,
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.errno == Errno::EAGAIN => return Err(stalled),
            Err(e) => return Err(BadRequest::Io(e)),
        }
    }
    Ok(())
}

/// Reads one request, all of it before `deadline`, and computes it.
fn serve_one(client: &OwnedFd, deadline: Instant) -> Result<(Vec<i32>, u8, i32), BadRequest> {
    let mut count = [0u8; 1];
    read_exact(client, &mut count, 0, 1, deadline)?;
    let n = count[0];
    if n == 0 {
        return Err(BadRequest::CountZero);
    }
    if n > MAX_OPERANDS {
        return Err(BadRequest::TooManyOperands(n));
    }
    let want = 1 + n as usize * OPSZ + 1;
    let mut body = vec![0u8; n as usize * OPSZ + 1];
    read_exact(client, &mut body, 1, want, deadline)?;
    let operator = body[body.len() - 1];
    let operands: Vec<i32> = body[..body.len() - 1]
        .chunks_exact(OPSZ)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let result = calculate(&operands, operator).ok_or(BadRequest::UnknownOperator(operator))?;
    write_all(client, &result.to_le_bytes()).map_err(BadRequest::Io)?;
    Ok((operands, operator, result))
}

/// The calculator server: one request per connection, one client after another.
pub fn server(opts: &ServerOpts, read_timeout: Duration) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    while !stop.requested() {
        // 4. accept()
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // A deadline for the whole request: a stalled or dribbling client cannot hold us.
        match serve_one(&client, Instant::now() + read_timeout) {
            Ok((operands, operator, result)) => {
                let shown: Vec<String> = operands.iter().map(i32::to_string).collect();
                workbook::log_line!(
                    "{peer}: {} = {result}",
                    shown.join(&format!(" {} ", operator as char))
                );
            }
            Err(BadRequest::Io(e)) if e.is_interrupted() => {}
            Err(bad) => workbook::log_error!("error: client {peer}: {bad}; closed it"),
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

/// Sends one request and returns the server's result.
fn ask(server: SocketAddr, operands: &[i32], operator: char) -> anyhow::Result<i32> {
    if operands.is_empty() || operands.len() > MAX_OPERANDS as usize {
        bail!("give 1 to {MAX_OPERANDS} operands, not {}", operands.len());
    }
    if !matches!(operator, '+' | '-' | '*') {
        bail!("unknown operator {operator:?}: use +, - or *");
    }
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    write_all(&sock, &encode_request(operands, operator as u8))?;
    // The result is 4 bytes, which may come in more than one read.
    let mut result = [0u8; OPSZ];
    let mut filled = 0;
    while filled < OPSZ {
        let n = read(&sock, &mut result[filled..])?;
        if n == 0 {
            bail!(
                "server {server} closed the connection without a result (it refused the request)"
            );
        }
        filled += n;
    }
    close(sock)?;
    Ok(i32::from_le_bytes(result))
}

fn client_once(server: SocketAddr, operands: &[i32], operator: char) -> anyhow::Result<()> {
    let result = ask(server, operands, operator)?;
    println!("Operation result: {result}");
    Ok(())
}

/// Prompts one value, or fails with a clear message at end of input.
fn prompt(text: &str) -> anyhow::Result<String> {
    match workbook::prompt_line(text)? {
        Some(line) => Ok(line.trim().to_string()),
        None => bail!("end of input before the request was complete"),
    }
}

/// The book's op_client: prompts for the count, each operand and the operator.
pub fn client_interactive(server: SocketAddr) -> anyhow::Result<()> {
    let count = prompt("Operand count: ")?;
    let count: u8 = count
        .parse()
        .ok()
        .filter(|n| (1..=MAX_OPERANDS).contains(n))
        .with_context(|| {
            format!("invalid operand count {count:?}: give a number from 1 to {MAX_OPERANDS}")
        })?;
    let mut operands = Vec::with_capacity(count as usize);
    for i in 1..=count {
        let text = prompt(&format!("Operand {i}: "))?;
        let x: i32 = text.parse().with_context(|| {
            format!("invalid operand {text:?}: give a whole number from -2147483648 to 2147483647")
        })?;
        operands.push(x);
    }
    let op = prompt("Operator: ")?;
    let mut chars = op.chars();
    let (Some(operator), None) = (chars.next(), chars.next()) else {
        bail!("invalid operator {op:?}: use +, - or *");
    };
    client_once(server, &operands, operator)
}

/// The demo: the server as a child, three calculations, one refused request.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["calc-server", "0"])?;
    let port = server.addr().port().to_string();
    let runs: [&[&str]; 4] = [
        &["--operator", "+", "3", "5", "7"],
        &["--operator", "*", "-2", "3", "4"],
        &["--operator", "+", "2147483647", "1"],
        &["--operator", "-", "10", "3", "2"],
    ];
    for args in runs {
        let mut argv = vec!["calc-client", "127.0.0.1", port.as_str()];
        argv.extend_from_slice(args);
        let status = workbook::demo::run_client(&argv, &[], |_| true)?;
        if !status.success() {
            bail!("the demo client ended with {status}");
        }
    }
    server.stop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_little_endian_with_count_and_operator() {
        assert_eq!(
            encode_request(&[1, -2], b'+'),
            [2, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, b'+']
        );
    }

    #[test]
    fn calculations_wrap_like_a_c_int() {
        assert_eq!(calculate(&[3, 5, 7], b'+'), Some(15));
        assert_eq!(calculate(&[10, 3, 2], b'-'), Some(5));
        assert_eq!(calculate(&[-2, 3, 4], b'*'), Some(-24));
        assert_eq!(calculate(&[i32::MAX, 1], b'+'), Some(i32::MIN));
        assert_eq!(calculate(&[65536, 65536], b'*'), Some(0));
        assert_eq!(calculate(&[1, 2], b'/'), None);
        assert_eq!(calculate(&[], b'+'), None);
    }
}
