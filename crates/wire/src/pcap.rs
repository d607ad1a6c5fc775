//! The capture as a pcap file, the format tcpdump and Wireshark read (`tcpdump -r FILE`).
//!
//! Written by `pcap-file` rather than by hand: the file header's magic number, version,
//! snap length and link type, and each record's timestamp and lengths, are a format's
//! details that a well-kept crate gets right once.

use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

use crate::capture::Packet;

/// Writes `packets` to `path` as a pcap file of Ethernet frames with nanosecond
/// timestamps (loopback's frames carry an all-zero Ethernet header).
pub fn write(path: &Path, packets: &[Packet]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
    for p in packets {
        writer
            .write_packet(&PcapPacket::new(p.wall, p.len, &p.data))
            .map_err(std::io::Error::other)?;
    }
    std::io::Write::flush(&mut writer.into_writer())
}
