//! The bench's tokio echo server: `tokio-echo <port> [backlog]`, 127.0.0.1 only.
//!
//! The multi-threaded runtime, as a Rust user would write it; pinned to one CPU by the
//! bench, it runs one worker thread (tokio sizes its pool from the CPUs it may use).
//! A task per connection, a 4 KiB buffer, read then write_all: the same work as the
//! workbook's echo servers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: tokio-echo <port> [backlog]");
        std::process::exit(2)
    });
    let backlog: u32 = args.next().and_then(|b| b.parse().ok()).unwrap_or(1024);
    let socket = TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    let listener = socket.listen(backlog)?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (mut stream, _peer) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}
