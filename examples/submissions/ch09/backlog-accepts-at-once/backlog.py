"""Broken twin of our backlog demo: it accept()s each client as soon as it connects.

Written by someone who believes the handshake needs accept(): nothing is ever queued,
so the demo cannot show the queue the kernel keeps.
Usage: backlog.py --backlog N --clients M [--pause S]
"""
import argparse
import socket
import time

p = argparse.ArgumentParser()
p.add_argument("--backlog", type=int, default=2)
p.add_argument("--clients", type=int, default=5)
p.add_argument("--pause", type=float, default=0)
a = p.parse_args()
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(a.backlog)
host, port = listener.getsockname()
print(f"listening on {host}:{port} with backlog {a.backlog}; accept() is not called yet", flush=True)
clients, accepted = [], []
for i in range(1, a.clients + 1):
    c = socket.create_connection((host, port))
    clients.append(c)
    accepted.append(listener.accept())  # the mistake: accept() right away
    print(f"client {i} (port {c.getsockname()[1]}): ESTABLISHED before any accept()", flush=True)
print("queued: 0 completed connections wait in the listen queue", flush=True)
if a.pause:
    print(f"pausing {a.pause} s before accept()", flush=True)
    time.sleep(a.pause)
for n, (conn, peer) in enumerate(accepted, 1):
    print(f"accept() #{n} -> client {n} (port {peer[1]})")
print("FIFO: yes")
