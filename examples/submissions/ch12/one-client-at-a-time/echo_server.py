"""Broken twin: an iterative echo server graded as a multiplexing one.

It serves one client from accept() to end of stream, then the next: every other client
waits, however long the first one stays.
"""
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(128)
while True:
    conn, _ = listener.accept()
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    conn.close()
