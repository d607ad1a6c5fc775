"""Broken twin: a chat room that does not remove a member who leaves.

It stops reading the closed socket but keeps broadcasting to it: the first write draws a
reset, the next raises BrokenPipeError, and the room dies with everyone in it.
"""
import select
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(128)
members = []
reading = []
partial = {}
while True:
    readable, _, _ = select.select([listener, *reading], [], [])
    for s in readable:
        if s is listener:
            conn, _ = listener.accept()
            members.append(conn)
            reading.append(conn)
            partial[conn] = b""
            continue
        data = s.recv(4096)
        if not data:
            reading.remove(s)  # the mistake: it stays in `members`
            continue
        partial[s] += data
        while b"\n" in partial[s]:
            line, _, partial[s] = partial[s].partition(b"\n")
            for m in members:
                m.sendall(line + b"\n")
