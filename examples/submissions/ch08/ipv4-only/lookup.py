"""Broken twin: a lookup built on socket.gethostbyname_ex(), which is IPv4 only.

It answers for localhost and 127.0.0.1, and fails for ::1, a name getaddrinfo()
resolves on every machine.
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
        name, aliases, addresses = socket.gethostbyname_ex(args.name)  # the mistake: IPv4 only
        print("Official name:", name)
        for i, a in enumerate(addresses, 1):
            print(f"IP addr {i}: {a}")
    else:
        socket.inet_pton(socket.AF_INET6 if ":" in args.addr else socket.AF_INET, args.addr)
        name, _, _ = socket.gethostbyaddr(args.addr)
        print("Official name:", name)
except OSError as e:
    sys.exit(f"lookup failed: {e}")
