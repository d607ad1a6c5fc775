"""Broken twin: a reverse lookup with NI_NUMERICHOST, which asks for the number back.

getnameinfo() with NI_NUMERICHOST returns the address as text, never a name; the
book's gethostbyaddr() wants NI_NAMEREQD.
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
        name, _ = socket.getnameinfo((args.addr, 0), socket.NI_NUMERICHOST)  # the mistake
        print("Official name:", name)
except OSError as e:
    sys.exit(f"lookup failed: {e}")
