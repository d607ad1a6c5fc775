//! # Chapter 3: addresses and byte order
//!
//! A port or an IPv4 address goes on the wire most significant byte first: *network
//! byte order*, big-endian. The group's x86 and ARM machines keep integers least
//! significant byte first: little-endian. `htons`/`htonl` (host to network, short and
//! long) swap on such machines and do nothing on a big-endian one; forgetting them puts
//! port 9190 on the wire as 42531.
//!
//! Subcommands, each printing before and after: `endian`, `inet-addr <dotted>`,
//! `inet-aton <dotted>`, `inet-ntoa <u32>`, `sockaddr <ip> <port>`. No subcommand: all
//! of them on the book's examples.
//!
//! System calls: none; these are the C library's conversions, done here with Rust's
//! integer methods (`u16::to_be`, `u32::from_be`) so each step is visible, and
//! `sockaddr` shows the real `struct sockaddr_in` that nix hands to bind()/connect().
//!
//! What the book's C gets wrong: `inet_addr()` returns `INADDR_NONE` (0xffffffff) for
//! an invalid address, which is also the valid address 255.255.255.255; the book tests
//! for it as if it could only mean an error. `inet_aton()` reports errors separately, so
//! use it (or `inet_pton()`); ours says which input was wrong and exits 1.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::socket::{SockaddrIn, SockaddrLike};

/// Chapter 3: addresses and byte order.
/// With no subcommand, runs every conversion on the book's examples.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Conversion>,
}

#[derive(Subcommand, Debug)]
pub enum Conversion {
    /// htons(0x1234) and htonl(0x12345678): host and network byte order, with their bytes (endian_conv)
    Endian,
    /// A dotted address to a network-order integer, as inet_addr() does (inet_addr)
    InetAddr { dotted: String },
    /// The same with inet_aton()'s rules, which also take 127.1 and 0x7f.1 (inet_aton)
    InetAton { dotted: String },
    /// An address given as a host-order integer (0x1020304 or 16909060) to dotted form (inet_ntoa)
    InetNtoa { value: String },
    /// The bytes of the struct sockaddr_in that bind() and connect() are given
    Sockaddr { ip: String, port: u16 },
}

/// Runs the conversion, or all of them when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Conversion::Endian) => endian(),
        Some(Conversion::InetAddr { dotted }) => inet_addr(&dotted),
        Some(Conversion::InetAton { dotted }) => inet_aton_cmd(&dotted),
        Some(Conversion::InetNtoa { value }) => inet_ntoa(&value),
        Some(Conversion::Sockaddr { ip, port }) => sockaddr(&ip, port),
        None => demo(),
    }
}

/// Bytes as they lie in memory, lowest address first.
fn bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `htons`: host to network byte order, 16 bits.
pub fn htons(x: u16) -> u16 {
    x.to_be()
}

/// `htonl`: host to network byte order, 32 bits.
pub fn htonl(x: u32) -> u32 {
    x.to_be()
}

fn endianness() -> &'static str {
    if cfg!(target_endian = "little") {
        "little-endian: least significant byte first, so htons/htonl swap bytes"
    } else {
        "big-endian: already network byte order, so htons/htonl change nothing"
    }
}

/// The book's endian_conv, with each value's bytes as they lie in memory.
pub fn endian() -> anyhow::Result<()> {
    let host_port: u16 = 0x1234;
    let net_port = htons(host_port);
    let host_addr: u32 = 0x1234_5678;
    let net_addr = htonl(host_addr);
    println!(
        "Host ordered port: {host_port:#x}   (bytes in memory: {})",
        bytes(&host_port.to_ne_bytes())
    );
    println!(
        "Network ordered port: {net_port:#x}   (bytes in memory: {})",
        bytes(&net_port.to_ne_bytes())
    );
    println!(
        "Host ordered address: {host_addr:#x}   (bytes in memory: {})",
        bytes(&host_addr.to_ne_bytes())
    );
    println!(
        "Network ordered address: {net_addr:#x}   (bytes in memory: {})",
        bytes(&net_addr.to_ne_bytes())
    );
    println!("This machine is {}.", endianness());
    Ok(())
}

/// One part of an inet_aton() address: decimal, octal with a leading 0, or hex 0x.
fn parse_part(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// inet_aton()'s rules: `a.b.c.d`, or fewer parts where the last fills the remaining
/// bytes (`127.1` is 127.0.0.1), each part decimal, octal or hex. Returns the address
/// as a host-order number (`0x7f000001` for 127.0.0.1).
pub fn inet_aton(dotted: &str) -> Option<u32> {
    let parts: Option<Vec<u32>> = dotted.split('.').map(parse_part).collect();
    let parts = parts?;
    let (head, last) = parts.split_last().map(|(l, h)| (h, *l))?;
    if parts.len() > 4 || head.iter().any(|p| *p > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if last_bits < 32 && last >= 1 << last_bits {
        return None;
    }
    let mut value = 0u32;
    for (i, p) in head.iter().enumerate() {
        value |= p << (24 - 8 * i);
    }
    Some(value | last)
}

fn invalid(dotted: &str, rules: &str) -> anyhow::Error {
    anyhow::anyhow!("invalid address {dotted:?}: {rules}")
}

/// The book's inet_addr: only the full dotted form, each part 0 to 255.
pub fn inet_addr(dotted: &str) -> anyhow::Result<()> {
    let addr: Ipv4Addr = dotted.parse().map_err(|_| {
        invalid(
            dotted,
            "expected four numbers from 0 to 255 separated by dots, such as 1.2.3.4",
        )
    })?;
    print_network_order(dotted, u32::from(addr));
    if addr == Ipv4Addr::BROADCAST {
        println!(
            "Note: C's inet_addr() returns this same value, INADDR_NONE, for an invalid address; use inet_aton()."
        );
    }
    Ok(())
}

/// inet_aton, with its more lenient forms.
pub fn inet_aton_cmd(dotted: &str) -> anyhow::Result<()> {
    let value = inet_aton(dotted).ok_or_else(|| {
        invalid(dotted, "expected a.b.c.d, a.b.c, a.b or a, each part decimal, octal (0...) or hex (0x...) and in range")
    })?;
    print_network_order(dotted, value);
    Ok(())
}

/// What sin_addr.s_addr holds for `host_value`, printed as the book prints it.
fn print_network_order(dotted: &str, host_value: u32) {
    let net = htonl(host_value);
    println!("{dotted} is {}", Ipv4Addr::from(host_value));
    println!(
        "Network ordered integer addr: {net:#x}   (bytes in memory: {})",
        bytes(&net.to_ne_bytes())
    );
}

/// The book's inet_ntoa example: a host-order value, htonl(), then dotted form.
pub fn inet_ntoa(value: &str) -> anyhow::Result<()> {
    let parsed = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => value.parse(),
    };
    let host_value = parsed.with_context(|| {
        format!(
            "invalid address value {value:?}: give a 32-bit number, such as 0x1020304 or 16909060"
        )
    })?;
    let net = htonl(host_value);
    println!(
        "s_addr = htonl({host_value:#x}) = {net:#x}   (bytes in memory: {})",
        bytes(&net.to_ne_bytes())
    );
    // inet_ntoa() reads s_addr's bytes in memory order: that order is the dotted order.
    let octets = net.to_ne_bytes();
    println!("Dotted-Decimal notation: {}", Ipv4Addr::from(octets));
    Ok(())
}

/// The struct sockaddr_in that nix builds for bind()/connect(), byte by byte.
pub fn sockaddr(ip: &str, port: u16) -> anyhow::Result<()> {
    let addr: Ipv4Addr = ip.parse().map_err(|_| {
        invalid(
            ip,
            "expected four numbers from 0 to 255 separated by dots, such as 127.0.0.1",
        )
    })?;
    let sa = SockaddrIn::from(SocketAddrV4::new(addr, port));
    // SAFETY: as_ptr() points at the sockaddr_in inside `sa`, which is len() bytes long
    // and lives until the end of this function; we only read it.
    let raw = unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), sa.len() as usize) };
    if raw.len() != 16 {
        bail!("unexpected sockaddr_in size {}", raw.len());
    }
    println!(
        "struct sockaddr_in for {ip}:{port} ({} bytes): {}",
        raw.len(),
        bytes(raw)
    );
    println!(
        "  sin_family  {}   AF_INET ({}), in host byte order",
        bytes(&raw[0..2]),
        libc_af_inet()
    );
    println!(
        "  sin_port    {}   htons({port}) = {:#06x}: {port} in network byte order",
        bytes(&raw[2..4]),
        htons(port)
    );
    println!(
        "  sin_addr    {}   {ip} in network byte order",
        bytes(&raw[4..8])
    );
    println!(
        "  sin_zero    {}   padding, always zero",
        bytes(&raw[8..16])
    );
    Ok(())
}

fn libc_af_inet() -> i32 {
    nix::sys::socket::AddressFamily::Inet as i32
}

/// Every conversion on the book's examples, the invalid one included.
fn demo() -> anyhow::Result<()> {
    type Step = fn() -> anyhow::Result<()>;
    let steps: [(&str, Step); 7] = [
        ("endian", endian),
        ("inet-addr 1.2.3.4", || inet_addr("1.2.3.4")),
        ("inet-addr 1.2.3.256", || inet_addr("1.2.3.256")),
        ("inet-aton 127.232.124.79", || {
            inet_aton_cmd("127.232.124.79")
        }),
        ("inet-aton 127.1", || inet_aton_cmd("127.1")),
        ("inet-ntoa 0x1020304", || inet_ntoa("0x1020304")),
        ("sockaddr 127.0.0.1 9190", || sockaddr("127.0.0.1", 9190)),
    ];
    for (i, (command, step)) in steps.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("$ ch03-addresses {command}");
        if let Err(e) = step() {
            println!("error: {e:#}   (the command exits 1)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_takes_the_short_and_based_forms() {
        assert_eq!(inet_aton("1.2.3.4"), Some(0x0102_0304));
        assert_eq!(inet_aton("127.1"), Some(0x7f00_0001));
        assert_eq!(inet_aton("10.1.2"), Some(0x0a01_0002));
        assert_eq!(inet_aton("0x7f.0.0.01"), Some(0x7f00_0001));
        assert_eq!(inet_aton("3232235777"), Some(0xc0a8_0101));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("08.1.1.1"), None, "8 is not an octal digit");
        assert_eq!(inet_aton("1.2.65536"), None);
    }

    #[test]
    fn htons_puts_the_high_byte_first_in_memory() {
        assert_eq!(htons(0x1234).to_ne_bytes(), [0x12, 0x34]);
        assert_eq!(htonl(0x1234_5678).to_ne_bytes(), [0x12, 0x34, 0x56, 0x78]);
    }
}
