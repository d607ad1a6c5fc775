//! What a captured frame says, in a beginner's words.
//!
//! The headers are parsed by `etherparse` (Ethernet, IPv4/IPv6, TCP/UDP/ICMP), not by
//! byte offsets of our own: the lesson is what TCP does, and an offset off by one would
//! teach something false.
//!
//! A [`Narrator`] follows each TCP connection to show sequence and acknowledgement
//! numbers relative to each side's first (its SYN's), as Wireshark does, and the window
//! in bytes (the header's field times the scale both SYNs agreed on).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice};

use crate::capture::Packet;

/// How many payload bytes a line shows.
const PREVIEW: usize = 24;

/// The TCP flags a beginner meets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

impl Flags {
    /// `SYN`, `SYN-ACK`, `ACK`, `PSH-ACK`, `FIN-ACK`, `RST`, `RST-ACK`...
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        for (set, name) in [
            (self.syn, "SYN"),
            (self.fin, "FIN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
        ] {
            if set {
                parts.push(name);
            }
        }
        if parts.is_empty() {
            "(no flags)".to_string()
        } else {
            parts.join("-")
        }
    }
}

/// What a frame carries, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Tcp {
        src: SocketAddr,
        dst: SocketAddr,
        flags: Flags,
        seq: u32,
        ack: u32,
        window: u16,
        /// The window scale option (SYN segments only).
        wscale: Option<u8>,
        /// The payload as captured (a capture that keeps only the start of each frame
        /// has only the start of it).
        payload: Vec<u8>,
        /// The payload's length on the wire.
        len: usize,
    },
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: Vec<u8>,
        len: usize,
    },
    /// ICMP: the kernel's answer to a datagram for a port where nothing is bound.
    Icmp {
        src: IpAddr,
        dst: IpAddr,
        /// "port unreachable", or the type and code.
        what: String,
        /// The datagram it answers (its UDP ports), when it quotes one.
        about: Option<(u16, u16)>,
    },
}

impl Segment {
    /// The segment in a captured frame, or None for anything else (ARP, IGMP...).
    ///
    /// Parsed leniently: a frame cut short by the capture still gives its headers, and
    /// the payload's length is what the frame had on the wire less its headers.
    pub fn parse(frame: &Packet) -> Option<Segment> {
        Segment::parse_frame(&frame.data, frame.len as usize)
    }

    /// The segment in the Ethernet frame `data`, `wire_len` bytes long on the wire.
    pub fn parse_frame(data: &[u8], wire_len: usize) -> Option<Segment> {
        let packet = LaxSlicedPacket::from_ethernet(data).ok()?;
        let (src, dst) = match packet.net.as_ref()? {
            LaxNetSlice::Ipv4(ip) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            ),
            LaxNetSlice::Ipv6(ip) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
            ),
            LaxNetSlice::Arp(_) => return None,
        };
        // What the frame's headers take: the rest of its length on the wire is payload.
        let len_of = |payload: &[u8]| wire_len.saturating_sub(data.len() - payload.len());
        match packet.transport? {
            TransportSlice::Tcp(tcp) => Some(Segment::Tcp {
                src: SocketAddr::new(src, tcp.source_port()),
                dst: SocketAddr::new(dst, tcp.destination_port()),
                flags: Flags {
                    syn: tcp.syn(),
                    ack: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    psh: tcp.psh(),
                },
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                window: tcp.window_size(),
                wscale: tcp.options_iterator().find_map(|o| match o {
                    Ok(TcpOptionElement::WindowScale(s)) => Some(s),
                    _ => None,
                }),
                payload: tcp.payload().to_vec(),
                len: len_of(tcp.payload()),
            }),
            TransportSlice::Udp(udp) => Some(Segment::Udp {
                src: SocketAddr::new(src, udp.source_port()),
                dst: SocketAddr::new(dst, udp.destination_port()),
                payload: udp.payload().to_vec(),
                len: len_of(udp.payload()),
            }),
            TransportSlice::Icmpv4(icmp) => Some(Segment::Icmp {
                src,
                dst,
                what: icmp_what(
                    icmp.type_u8() == 3 && icmp.code_u8() == 3,
                    icmp.type_u8(),
                    icmp.code_u8(),
                ),
                about: quoted_ports(icmp.payload()),
            }),
            TransportSlice::Icmpv6(icmp) => Some(Segment::Icmp {
                src,
                dst,
                what: icmp_what(
                    icmp.type_u8() == 1 && icmp.code_u8() == 4,
                    icmp.type_u8(),
                    icmp.code_u8(),
                ),
                about: quoted_ports(icmp.payload()),
            }),
            TransportSlice::Igmp(_) => None,
        }
    }

    /// The two ends, for TCP and UDP.
    pub fn ends(&self) -> Option<(SocketAddr, SocketAddr)> {
        match self {
            Segment::Tcp { src, dst, .. } | Segment::Udp { src, dst, .. } => Some((*src, *dst)),
            Segment::Icmp { .. } => None,
        }
    }

    /// Whether `port` is one end of it (an ICMP message about a datagram counts for the
    /// datagram's ports).
    pub fn involves(&self, port: u16) -> bool {
        match self {
            Segment::Tcp { src, dst, .. } | Segment::Udp { src, dst, .. } => {
                src.port() == port || dst.port() == port
            }
            Segment::Icmp { about, .. } => about.is_some_and(|(a, b)| a == port || b == port),
        }
    }
}

fn icmp_what(port_unreachable: bool, t: u8, c: u8) -> String {
    if port_unreachable {
        "port unreachable".to_string()
    } else {
        format!("type {t} code {c}")
    }
}

/// The UDP ports of the datagram an ICMP error quotes (its IP header and the first 8
/// bytes after it: cut short, so parsed leniently).
fn quoted_ports(quoted: &[u8]) -> Option<(u16, u16)> {
    match etherparse::LaxSlicedPacket::from_ip(quoted)
        .ok()?
        .transport?
    {
        TransportSlice::Udp(udp) => Some((udp.source_port(), udp.destination_port())),
        TransportSlice::Tcp(tcp) => Some((tcp.source_port(), tcp.destination_port())),
        _ => None,
    }
}

/// The start of a payload, escaped as the narrated calls show bytes, `...` when there
/// is more than is shown (or than was captured).
fn preview(payload: &[u8], len: usize) -> String {
    let shown = syscalls::trace::escape_bytes(payload, PREVIEW);
    if len > payload.len() && !shown.ends_with("...") {
        format!("{shown}...")
    } else {
        shown
    }
}

/// One direction of a TCP connection, as far as we have seen it.
#[derive(Debug, Clone, Copy, Default)]
struct Side {
    /// Its first sequence number (its SYN's, or the first seen).
    isn: Option<u32>,
    /// The window scale its SYN offered.
    wscale: Option<u8>,
}

/// Turns segments into lines, following each connection's numbers.
#[derive(Debug)]
pub struct Narrator {
    sides: HashMap<(SocketAddr, SocketAddr), Side>,
    names: Vec<(u16, String)>,
    others: String,
}

impl Default for Narrator {
    fn default() -> Narrator {
        Narrator {
            sides: HashMap::new(),
            names: Vec::new(),
            others: "client".to_string(),
        }
    }
}

impl Narrator {
    pub fn new() -> Narrator {
        Narrator::default()
    }

    /// What to call an end that talks to a named one (`client` unless told).
    pub fn call_others(&mut self, name: &str) {
        self.others = name.to_string();
    }

    /// Names the end on `port` (`server`): lines say `server:9190`, and an end talking to
    /// a named one is called `client`.
    pub fn name(&mut self, port: u16, name: &str) {
        self.names.push((port, name.to_string()));
    }

    fn named(&self, port: u16) -> Option<&str> {
        self.names
            .iter()
            .rev()
            .find(|(p, _)| *p == port)
            .map(|(_, n)| n.as_str())
    }

    /// `server:9190`, `client:48962`, or `127.0.0.1:48962` for an end we cannot name.
    fn end(&self, addr: SocketAddr, other: SocketAddr) -> String {
        match (self.named(addr.port()), self.named(other.port())) {
            (Some(name), _) => format!("{name}:{}", addr.port()),
            (None, Some(_)) => format!("{}:{}", self.others, addr.port()),
            (None, None) => addr.to_string(),
        }
    }

    /// The line for `segment`, and what it teaches us about its connection.
    pub fn line(&mut self, segment: &Segment) -> String {
        match segment {
            Segment::Tcp {
                src,
                dst,
                flags,
                seq,
                ack,
                window,
                wscale,
                payload,
                len,
            } => {
                let mine = *self.sides.entry((*src, *dst)).or_default();
                let mine = Side {
                    isn: mine
                        .isn
                        .or(Some(*seq))
                        .map(|isn| if flags.syn { *seq } else { isn }),
                    wscale: if flags.syn { *wscale } else { mine.wscale },
                };
                self.sides.insert((*src, *dst), mine);
                let theirs = self.sides.get(&(*dst, *src)).copied().unwrap_or_default();
                let mut text = format!(
                    "{} > {} {}",
                    self.end(*src, *dst),
                    self.end(*dst, *src),
                    flags.name()
                );
                let rel = seq.wrapping_sub(mine.isn.unwrap_or(*seq));
                text.push_str(&format!(" seq={rel}"));
                if flags.ack {
                    let rel_ack = theirs.isn.map_or(*ack, |isn| ack.wrapping_sub(isn));
                    text.push_str(&format!(" ack={rel_ack}"));
                }
                if *len > 0 {
                    text.push_str(&format!(" len={len} {}", preview(payload, *len)));
                }
                // A SYN's window is never scaled; after it, only when both SYNs offered a
                // scale (RFC 7323).
                let scale = match (flags.syn, mine.wscale, theirs.wscale) {
                    (false, Some(s), Some(_)) => s,
                    _ => 0,
                };
                text.push_str(&format!(" win={}", u32::from(*window) << scale.min(14)));
                text
            }
            Segment::Udp {
                src,
                dst,
                payload,
                len,
            } => format!(
                "{} > {} UDP len={len} {}",
                self.end(*src, *dst),
                self.end(*dst, *src),
                preview(payload, *len)
            ),
            Segment::Icmp {
                src,
                dst,
                what,
                about,
            } => match about {
                Some((from, to)) => {
                    format!("{src} > {dst} ICMP {what} (about the datagram {from} > {to})")
                }
                None => format!("{src} > {dst} ICMP {what}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp(src: u16, dst: u16, seq: u32, ack: Option<u32>, syn: bool, payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(src, dst, seq, 512);
        if syn {
            b = b.syn();
        }
        if let Some(ack) = ack {
            b = b.ack(ack);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("write a test frame");
        out
    }

    #[test]
    fn a_handshake_and_data_read_as_relative_numbers() {
        let mut n = Narrator::new();
        n.name(9190, "server");
        let lines: Vec<String> = [
            tcp(40000, 9190, 1000, None, true, b""),
            tcp(9190, 40000, 5000, Some(1001), true, b""),
            tcp(40000, 9190, 1001, Some(5001), false, b""),
            tcp(40000, 9190, 1001, Some(5001), false, b"Hello socket!\n"),
        ]
        .iter()
        .map(|f| n.line(&Segment::parse_frame(f, f.len()).expect("parse")))
        .collect();
        assert_eq!(lines[0], "client:40000 > server:9190 SYN seq=0 win=512");
        assert_eq!(
            lines[1],
            "server:9190 > client:40000 SYN-ACK seq=0 ack=1 win=512"
        );
        assert_eq!(
            lines[2],
            "client:40000 > server:9190 ACK seq=1 ack=1 win=512"
        );
        assert_eq!(
            lines[3],
            r#"client:40000 > server:9190 ACK seq=1 ack=1 len=14 "Hello socket!\n" win=512"#
        );
    }

    #[test]
    fn a_datagram_has_no_handshake_and_keeps_its_text() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(50000, 9190)
            .write(&mut frame, b"Hello UDP!\n")
            .expect("write a test frame");
        let segment = Segment::parse_frame(&frame, frame.len()).expect("parse");
        assert!(segment.involves(9190));
        let mut n = Narrator::new();
        n.name(9190, "server");
        assert_eq!(
            n.line(&segment),
            r#"client:50000 > server:9190 UDP len=11 "Hello UDP!\n""#
        );
    }
}
