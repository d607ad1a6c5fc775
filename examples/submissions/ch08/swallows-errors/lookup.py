"""Broken twin: a lookup that hides a failed lookup and exits 0.

A name that does not exist prints "Official name: NAME" and no address, with status 0:
a script calling it cannot tell.
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
        try:
            seen = []
            for family, _, _, canon, sockaddr in socket.getaddrinfo(args.name, None, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME):
                if sockaddr[0] not in seen:
                    seen.append(sockaddr[0])
            print("Official name:", args.name)
            for i, a in enumerate(seen, 1):
                print(f"IP addr {i}: {a}")
        except socket.gaierror:
            print("Official name:", args.name)  # the mistake: a failure reported as success
    else:
        socket.inet_pton(socket.AF_INET6 if ":" in args.addr else socket.AF_INET, args.addr)
        name, _, _ = socket.gethostbyaddr(args.addr)
        print("Official name:", name)
except OSError as e:
    sys.exit(f"lookup failed: {e}")
