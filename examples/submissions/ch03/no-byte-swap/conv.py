"""Broken twin of our ch03 binary: it forgets htons()/htonl().

It prints host byte order where network byte order belongs, the bug that puts port 9190
on the wire as 42531. It stands in for our converter to prove ch03/conversions can fail.
"""
import struct
import sys


def hexbytes(b):
    return " ".join(f"{x:02x}" for x in b)


def main():
    cmd = sys.argv[1]
    if cmd == "endian":
        # The mistake: "network order" computed as the host value unchanged.
        print(f"Network ordered port: 0x1234   (bytes in memory: {hexbytes(struct.pack('=H', 0x1234))})")
        print(f"Network ordered address: 0x12345678   (bytes in memory: {hexbytes(struct.pack('=I', 0x12345678))})")
    elif cmd in ("inet-addr", "inet-aton"):
        parts = sys.argv[2].split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            print(f"error: invalid address {sys.argv[2]!r}", file=sys.stderr)
            sys.exit(1)
        value = int.from_bytes(bytes(int(p) for p in parts), "big")
        print(f"Network ordered integer addr: {value:#x}   (bytes in memory: {hexbytes(struct.pack('=I', value))})")
    else:
        print(f"error: {cmd} is not implemented", file=sys.stderr)
        sys.exit(1)


main()
