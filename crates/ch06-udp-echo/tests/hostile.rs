//! The UDP echo server with the largest datagrams its family allows (README, "When
//! things go wrong").

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use harness::hostile::Launch;

const BIN: &str = env!("CARGO_BIN_EXE_ch06-udp-echo");

/// Over IPv6 a UDP payload may be 65,527 bytes (the payload length does not count the
/// 40-byte header), 20 more than over IPv4. The server used to receive into 65,507 bytes
/// and silently echo a datagram cut short; now it is sized for the family and the echo
/// is whole.
#[test]
fn the_largest_ipv6_datagram_comes_back_whole() {
    let Ok(client) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback (::1) on this machine");
        return;
    };
    let server = Launch::new(BIN, &["server", "0", "--host", "::1"]).start();
    let addr: SocketAddr = server.addr();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("SO_RCVTIMEO");
    let sent: Vec<u8> = (0..65_527).map(|i| (i % 251) as u8).collect();
    client
        .send_to(&sent, addr)
        .expect("sendto 65,527 bytes over IPv6");
    let mut buf = vec![0u8; 70_000];
    let (n, from) = client.recv_from(&mut buf).expect("the echo within 10 s");
    assert_eq!(from, addr, "the echo comes from the server");
    assert_eq!(n, sent.len(), "{n} of {} bytes came back", sent.len());
    assert!(buf[..n] == sent[..], "the echo differs from what was sent");
}
