"""The book's gethostbyname/gethostbyaddr lookups in Python, correct: the model the
Python twins patch.

--name: every address getaddrinfo() gives, IPv4 and IPv6, each once; a name that does
not exist is one line on stderr and exit 1. --addr: a malformed address is refused as
such before any lookup (inet_pton), then gethostbyaddr() gives the name, or one line on
stderr and exit 1.
"""
import argparse
import socket
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--name")
parser.add_argument("--addr")
args = parser.parse_args()
try:
    if args.name is not None:
        seen = []
        for family, _, _, canon, sockaddr in socket.getaddrinfo(args.name, None, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME):
            if sockaddr[0] not in seen:
                seen.append(sockaddr[0])
        print("Official name:", args.name)
        for i, a in enumerate(seen, 1):
            print(f"IP addr {i}: {a}")
    else:
        socket.inet_pton(socket.AF_INET6 if ":" in args.addr else socket.AF_INET, args.addr)
        name, _, _ = socket.gethostbyaddr(args.addr)
        print("Official name:", name)
except OSError as e:
    sys.exit(f"lookup failed: {e}")
