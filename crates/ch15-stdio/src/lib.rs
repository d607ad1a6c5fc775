//! # Chapter 15: sockets and standard I/O (소켓과 표준 입출력)
//!
//! C's standard I/O (`fgetc`, `fgets`, `fputs`) puts a buffer in front of the fd: a read
//! fills the buffer with one large read() and hands it out piece by piece; a write
//! collects in the buffer until it is full or `fflush()`ed. Copying a file one byte at a
//! time costs two system calls per byte with read()/write(), and two per buffer with
//! stdio. On a socket the same buffer holds back a reply until it is flushed: a server
//! that forgets `fflush()` leaves its client waiting for ever.
//!
//! In Rust, standard I/O is a buffered stream over the fd: `BufReader` and `BufWriter`
//! (std) over a `syscalls::FdStream` (an fd with `Read` and `Write`, like `std::fs::File`,
//! but narrated). `BufReader::new(FdStream::from(fd))` is `fdopen(fd, "r")`,
//! `stream.fd()` is `fileno()`, `flush()` is `fflush()`, and dropping is `fclose()`.
//!
//! Subcommands: `syscpy` and `stdcpy` (the same copy with read()/write() of one byte and
//! with buffered streams; both print the system calls the kernel counted and the time:
//! syscpy.c, stdcpy.c), `desto [FILE]` (an fd made a stream: desto.c), `todes [FILE]`
//! (a stream's fd: todes.c), `echo-stdserv <port>` and `echo-client <ip> <port>` (the echo
//! server and client over buffered streams on the socket, with fgets/fputs/fflush:
//! echo_stdserv.c, echo_client.c). No subcommand: the two copies side by side, desto and
//! todes, and the echo server with a client.
//!
//! System calls: `open`, `read`, `write` (one per byte, or one per buffer), `close`; the
//! server's `socket`, `bind`, `listen`, `accept`, and the reads and writes its buffered
//! streams make.
//!
//! What the book's C gets wrong: echo_stdserv.c loops on `while (!feof(readfp))`: at end
//! of stream fgets() returns NULL and leaves the buffer as it was, and the loop echoes the
//! client's last line a second time. It makes two `FILE*`s of one fd and fclose()s both,
//! closing the fd twice. echo_client.c ignores fgets()'s NULL, at the end of input and when
//! the server closes. Ours stops at end of stream, gives the writer its own fd, and stops
//! at either NULL. syscpy.c and stdcpy.c measure nothing; ours count and time the calls.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    Errno, FdStream, StopSignals, accept, bind, close, connect, create, getsockname,
    ignore_sigpipe, is_interrupted, listen, open_read, read, tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt};

/// The book's buffer for one line: fgets() reads at most BUF_SIZE - 1 bytes at a time.
const BUF_SIZE: usize = 1024;

/// The longest reply line the client accepts (every read has a limit).
const MAX_REPLY: u64 = 1 << 20;

/// Chapter 15: sockets and standard I/O: buffered streams over an fd, fflush, fdopen and
/// fileno. With no subcommand, runs the copies, desto and todes, and the echo server.
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
    /// Copies a file with read() and write(), one byte at a time, and counts the calls (syscpy.c)
    Syscpy(CopyOpts),
    /// Copies a file byte by byte through buffered streams, and counts the calls (stdcpy.c)
    Stdcpy(CopyOpts),
    /// An fd from open() made into a buffered stream: fdopen() (desto.c)
    Desto {
        /// The file to write (the book: data.dat)
        #[arg(default_value = "data.dat")]
        file: PathBuf,
    },
    /// A buffered stream's fd: fileno() (todes.c)
    Todes {
        /// The file to write (the book: data.dat)
        #[arg(default_value = "data.dat")]
        file: PathBuf,
    },
    /// Echo server over buffered streams on the socket: fgets, fputs, fflush (echo_stdserv.c)
    EchoStdserv(ServerOpts),
    /// Echo client over buffered streams on the socket (echo_client.c of chapter 15)
    EchoClient(ClientOpts),
}

/// What syscpy and stdcpy copy.
#[derive(clap::Args, Debug, Clone)]
pub struct CopyOpts {
    /// The file to copy; without it, a text file of --bytes bytes made for the purpose
    pub source: Option<PathBuf>,
    /// Where to copy it (default: next to the source, with `.copy` added)
    pub destination: Option<PathBuf>,
    /// How large a file to make when no source is given
    #[arg(long, default_value_t = 100_000)]
    pub bytes: usize,
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::Syscpy(opts)) => with_files(&opts, |from, to| report(&syscpy(from, to)?)),
        Some(Demo::Stdcpy(opts)) => with_files(&opts, |from, to| report(&stdcpy(from, to)?)),
        Some(Demo::Desto { file }) => desto(&file),
        Some(Demo::Todes { file }) => todes(&file),
        Some(Demo::EchoStdserv(opts)) => echo_stdserv(&opts),
        Some(Demo::EchoClient(opts)) => echo_client(opts.addr()?),
        None => demo(),
    }
}

// ------------------------------------------------------------------ the two copies

/// What a copy cost, as the kernel counted it (`/proc/self/io`: `syscr` counts every
/// read-type system call of this process, `syscw` every write-type one).
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub what: &'static str,
    pub bytes: u64,
    pub reads: u64,
    pub writes: u64,
    pub took: Duration,
}

/// This process's read and write system calls so far.
fn calls_so_far() -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").context("read /proc/self/io")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/self/io"))
    };
    Ok((field("syscr:")?, field("syscw:")?))
}

/// Runs `copy` and measures it.
fn measured(
    what: &'static str,
    copy: impl FnOnce() -> anyhow::Result<u64>,
) -> anyhow::Result<Cost> {
    let (reads, writes) = calls_so_far()?;
    let started = Instant::now();
    let bytes = copy()?;
    let took = started.elapsed();
    let (reads_after, writes_after) = calls_so_far()?;
    Ok(Cost {
        what,
        bytes,
        reads: reads_after - reads,
        writes: writes_after - writes,
        took,
    })
}

/// The book's syscpy.c: read() and write() of one byte, until the end of the file.
pub fn syscpy(from: &Path, to: &Path) -> anyhow::Result<Cost> {
    measured("read()/write() of 1 byte", || {
        // 1. open() both files
        let source = open_read(from)?;
        let copy = create(to)?;
        let mut byte = [0u8; 1];
        let mut copied = 0;
        // 2. read() one byte, write() it: two system calls per byte
        while read(&source, &mut byte)? == 1 {
            write_all(&copy, &byte)?;
            copied += 1;
        }
        close(source)?;
        close(copy)?;
        Ok(copied)
    })
}

/// The book's stdcpy.c: fgetc() and fputc(), byte by byte, through buffered streams.
pub fn stdcpy(from: &Path, to: &Path) -> anyhow::Result<Cost> {
    measured("fgetc()/fputc(): buffered", || {
        // 1. fopen() both: an fd each, and a buffer in front of it
        let mut source = BufReader::new(FdStream::from(open_read(from)?));
        let mut copy = BufWriter::new(FdStream::from(create(to)?));
        let mut byte = [0u8; 1];
        let mut copied = 0;
        // 2. One byte at a time from the buffer; read() refills it 8 KiB at once, and
        //    write() empties the writer's when it is full.
        while source.read(&mut byte)? == 1 {
            copy.write_all(&byte)?;
            copied += 1;
        }
        // 3. fclose(): what the writer still holds goes out, then close().
        copy.flush()?;
        drop(copy);
        drop(source);
        Ok(copied)
    })
}

/// Prints what a copy cost.
fn report(cost: &Cost) -> anyhow::Result<()> {
    println!(
        "{}: {} bytes copied with {} read calls and {} write calls, in {:.3} s",
        cost.what,
        cost.bytes,
        cost.reads,
        cost.writes,
        cost.took.as_secs_f64()
    );
    if syscalls::trace::enabled() {
        println!("(the trace's own writes to stderr are counted too)");
    }
    Ok(())
}

/// Runs `copy` on the files `opts` names, or on a file made for it in a temporary
/// directory (removed afterwards).
fn with_files(
    opts: &CopyOpts,
    copy: impl FnOnce(&Path, &Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Some(source) = &opts.source {
        let destination = opts.destination.clone().unwrap_or_else(|| {
            let mut name = source.as_os_str().to_owned();
            name.push(".copy");
            PathBuf::from(name)
        });
        return copy(source, &destination);
    }
    let dir = std::env::temp_dir().join(format!("workbook-ch15-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let source = dir.join("news.txt");
    let result = (|| {
        std::fs::write(&source, text_of(opts.bytes))
            .with_context(|| format!("write {}", source.display()))?;
        copy(&source, &dir.join("cpy.txt"))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `bytes` bytes of text, a sentence again and again, as the book's news.txt.
fn text_of(bytes: usize) -> Vec<u8> {
    b"Standard I/O puts a buffer between the program and the system calls.\n"
        .iter()
        .copied()
        .cycle()
        .take(bytes)
        .collect()
}

// ------------------------------------------------------------------ fdopen and fileno

/// The book's desto.c: open() gives an fd; fdopen() makes it a stream.
fn desto(file: &Path) -> anyhow::Result<()> {
    // 1. open(): an fd
    let fd = create(file)?;
    // 2. fdopen(fd, "w"): a buffered stream over it
    let mut fp = BufWriter::new(FdStream::from(fd));
    // 3. fputs(): into the buffer; no system call yet
    fp.write_all(b"Network C programming \n")?;
    println!("written into the stream's buffer; nothing has reached the file yet");
    // 4. fclose(): the buffer is written out (write()), then the fd is closed (close())
    fp.flush()?;
    drop(fp);
    println!(
        "{} now holds {} bytes",
        file.display(),
        std::fs::metadata(file)?.len()
    );
    Ok(())
}

/// The book's todes.c: a stream's fd, fileno(), and a second stream on the same fd.
fn todes(file: &Path) -> anyhow::Result<()> {
    // 1. fopen(): a stream, and an fd under it
    let fp = BufWriter::new(FdStream::from(create(file)?));
    // 2. fileno(): the fd
    println!("First file descriptor: {}", fp.get_ref().fd().as_raw_fd());
    // 3. fdopen(fileno(fp), "w") in the book makes a second stream on the same fd; ours
    //    takes the fd over from the first stream (unwrapping it), so that only one
    //    closes it.
    let stream = fp.into_inner().map_err(|e| e.into_error())?;
    let mut fp = BufWriter::new(stream);
    fp.write_all(b"TCP/IP SOCKET PROGRAMMING \n")?;
    println!("Second file descriptor: {}", fp.get_ref().fd().as_raw_fd());
    fp.flush()?;
    Ok(())
}

// ------------------------------------------------------------------ the echo server

/// One client over buffered streams: fgets() a line, fputs() it back, fflush().
fn serve(client: OwnedFd) -> std::io::Result<()> {
    let stream = FdStream::from(client);
    // The book's two fdopen()s on one socket: a reader and a writer, each its buffer.
    let mut readfp = BufReader::new(&stream);
    let mut writefp = BufWriter::new(&stream);
    let mut message = Vec::with_capacity(BUF_SIZE);
    loop {
        message.clear();
        // 5. fgets(message, BUF_SIZE, readfp): a line, or the first BUF_SIZE - 1 bytes
        //    of a longer one (the rest comes next time round).
        let n = (&mut readfp)
            .take(BUF_SIZE as u64 - 1)
            .read_until(b'\n', &mut message)?;
        // End of stream: fgets() returns NULL. (The book tests feof() before the call
        // instead, and echoes the last line twice.)
        if n == 0 {
            // 8. fclose() of both streams: dropping writefp writes out what is left
            //    (nothing, after the flush), and dropping `stream` closes the fd, once.
            return Ok(());
        }
        // 6. fputs(message, writefp): into the buffer ...
        writefp.write_all(&message)?;
        // 7. fflush(writefp): ... and out. Without it the reply waits in the buffer
        //    until 8 KiB have gathered, and the client waits for it for ever.
        writefp.flush()?;
    }
}

/// The book's echo_stdserv.c: an iterative echo server over buffered streams.
pub fn echo_stdserv(opts: &ServerOpts) -> anyhow::Result<()> {
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
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) => return Err(e.into()),
        };
        workbook::log_line!("Connected client ({peer})");
        match serve(client) {
            Ok(()) => workbook::log_line!("client disconnected ({peer})"),
            Err(e) if is_interrupted(&e) => {}
            Err(e) => workbook::log_error!("error: client {peer}: {e}"),
        }
    }
    close(listener)?;
    Ok(())
}

/// The book's echo_client.c of chapter 15: lines typed go out through a buffered
/// stream, flushed, and each reply is read back a line at a time.
pub fn echo_client(server: SocketAddr) -> anyhow::Result<()> {
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    // 3. fdopen() twice: a reader and a writer on the socket.
    let stream = FdStream::from(sock);
    let mut readfp = BufReader::new(&stream);
    let mut writefp = BufWriter::new(&stream);
    while let Some(line) = workbook::prompt_line("Input message(Q to quit): ")? {
        if line == "q" || line == "Q" {
            break;
        }
        // 4. fputs() and fflush(): the line leaves only when flushed.
        writefp.write_all(line.as_bytes())?;
        writefp.write_all(b"\n")?;
        writefp.flush()?;
        // 5. fgets(): the reply, up to its newline, however many reads it takes.
        let mut reply = Vec::new();
        let n = (&mut readfp)
            .take(MAX_REPLY)
            .read_until(b'\n', &mut reply)?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        if reply.last() != Some(&b'\n') && n as u64 == MAX_REPLY {
            bail!("a reply line longer than {MAX_REPLY} bytes");
        }
        println!(
            "Message from server: {}",
            String::from_utf8_lossy(&reply).trim_end_matches(['\n', '\r'])
        );
    }
    // 6. fclose(): both streams, one fd.
    drop(writefp);
    drop(readfp);
    stream.close()?;
    Ok(())
}

// ------------------------------------------------------------------ the demo

/// The demo: the two copies side by side, fdopen and fileno, the echo server.
fn demo() -> anyhow::Result<()> {
    let opts = CopyOpts {
        source: None,
        destination: None,
        bytes: 100_000,
    };
    let mut costs = Vec::new();
    with_files(&opts, |from, to| {
        costs.push(syscpy(from, to)?);
        costs.push(stdcpy(from, to)?);
        Ok(())
    })?;
    for cost in &costs {
        report(cost)?;
    }
    if let [sys, std] = costs[..] {
        println!(
            "the buffered copy made {}x fewer system calls and took {:.1}x less time",
            (sys.reads + sys.writes) / (std.reads + std.writes).max(1),
            sys.took.as_secs_f64() / std.took.as_secs_f64().max(1e-9)
        );
    }
    let dir = std::env::temp_dir().join(format!("workbook-ch15-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let result = streams_demo(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn streams_demo(dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("data.dat").to_string_lossy().into_owned();
    side_ok("desto", &["desto", &file], &[])?;
    side_ok("todes", &["todes", &file], &[])?;
    let server = workbook::demo::DemoServer::start(&["echo-stdserv", "0"])?;
    let port = server.addr().port().to_string();
    side_ok(
        "client",
        &["echo-client", "127.0.0.1", &port],
        &["Hello, buffered world!", "one more line"],
    )?;
    server.wait_for("the client's end", |l| l.starts_with("client disconnected"))?;
    server.stop()
}

fn side_ok(side: &'static str, args: &[&str], inputs: &[&str]) -> anyhow::Result<()> {
    let status =
        workbook::demo::run_side(side, args, inputs, |l| l.starts_with("Message from server"))?;
    if !status.success() {
        bail!("the {side} demo ended with {status}");
    }
    Ok(())
}
