"""Broken twin: a select() server (echo or chat) whose sockets are blocking.

select() says a socket is readable, but a write to a client that does not read blocks
the whole process once that client's buffers are full: every other client waits.
Usage: server.py echo|chat PORT
"""
import select
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
mode, port = sys.argv[1], int(sys.argv[2])
listener = socket.socket()
listener.bind(("127.0.0.1", port))
listener.listen(128)
clients = {}  # socket -> partial line
while True:
    readable, _, _ = select.select([listener, *clients], [], [])
    for s in readable:
        if s is listener:
            conn, _ = listener.accept()
            clients[conn] = b""
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            del clients[s]
            s.close()
            continue
        try:
            if mode == "echo":
                s.sendall(data)  # the mistake: blocks while this client does not read
            else:
                clients[s] += data
                while b"\n" in clients[s]:
                    line, _, clients[s] = clients[s].partition(b"\n")
                    for other in list(clients):
                        other.sendall(line + b"\n")  # the mistake: blocks on a member who does not read
        except OSError:
            pass
