"""Broken twin of our backlog demo: its accept() lines name the clients backwards.

The queue is real (nothing is accepted before the pause), but when it reports which
client each accept() returned, it walks its list of clients from the end: the report
says LIFO where the kernel is FIFO.
Usage: backlog.py --backlog N --clients M [--pause S]
"""
import argparse
import select
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
clients = []
for i in range(1, a.clients + 1):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex((host, port))
    select.select([], [c], [], 0.3)
    clients.append(c)
    print(f"client {i} (port {c.getsockname()[1]}): connecting", flush=True)
print("queued: completed connections wait in the listen queue", flush=True)
if a.pause:
    print(f"pausing {a.pause} s before accept()", flush=True)
    time.sleep(a.pause)
for n in range(1, a.clients + 1):
    conn, peer = listener.accept()
    wrong = clients[-n].getsockname()[1]  # the mistake: the list walked from the end
    print(f"accept() #{n} -> client {a.clients + 1 - n} (port {wrong})", flush=True)
    conn.close()
