"""Broken twin: a lookup that crashes with a traceback on a malformed address.

ipaddress.ip_address() raises ValueError, which the except clause (OSError only)
does not catch: the user gets a traceback instead of one clear line.
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
        import ipaddress
        ipaddress.ip_address(args.addr)  # the mistake: ValueError is not caught below
        name, _, _ = socket.gethostbyaddr(args.addr)
        print("Official name:", name)
except OSError as e:
    sys.exit(f"lookup failed: {e}")
