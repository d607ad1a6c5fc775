"""Broken twin: a chat room that relays each recv() as it comes, without framing lines.

TCP delivers a line in as many pieces as it likes; relayed piece by piece, two members'
lines interleave mid-line.
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
while True:
    readable, _, _ = select.select([listener, *members], [], [])
    for s in readable:
        if s is listener:
            conn, _ = listener.accept()
            members.append(conn)
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            members.remove(s)
            s.close()
            continue
        for m in members:  # the mistake: relays a piece, not a line
            try:
                m.sendall(data)
            except OSError:
                pass
