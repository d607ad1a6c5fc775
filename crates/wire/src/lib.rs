//! # wire: the segments behind the calls
//!
//! The demos narrate system calls; this crate shows what those calls put on the wire.
//! `--wire` runs a demo inside a user and network namespace of its own (no root needed:
//! [`namespace`]), captures that namespace's loopback with a packet socket
//! ([`capture`]), and turns each frame into a line a beginner reads ([`segment`]):
//! direction, flags (SYN, SYN-ACK, ACK, PSH, FIN, RST), relative sequence and
//! acknowledgement numbers, payload length and a short preview, window. `--pcap FILE`
//! writes the same frames for tcpdump or Wireshark ([`pcap`]).
//!
//! The demos (`workbook::demo`) put these lines on their timeline beside the calls; the
//! checker (`harness::wire`) adds them to a failing check's evidence.
//!
//! Linux only (packet sockets, namespaces), like the rest of the workbook.

pub mod capture;
pub mod namespace;
pub mod pcap;
pub mod segment;

pub use capture::{Capture, Captured, Packet};
pub use namespace::{Ids, Refused, Unavailable, enter, enter_private, how_to_enable};
pub use segment::{Flags, Narrator, Segment};
