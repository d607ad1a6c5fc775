"""Broken twin: a chat client that sends lines without the `[NAME] ` prefix.

The book's chat protocol is "[name] message": without it, the room cannot tell who spoke.
"""
import os
import select
import socket
import sys

sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
name = sys.argv[3]
while True:
    readable, _, _ = select.select([sys.stdin, sock], [], [])
    if sock in readable:
        data = sock.recv(4096)
        if not data:
            sys.exit("the server closed the connection")
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()
    if sys.stdin in readable:
        line = os.read(0, 4096).decode()
        if not line or line.strip() in ("q", "Q"):
            break
        sock.sendall(line.encode())  # the mistake: no f"[{name}] " in front
sock.close()
