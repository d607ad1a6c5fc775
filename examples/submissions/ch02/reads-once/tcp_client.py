"""Broken twin: a client that believes one recv() returns what one send() sent.

It prints whatever its single recv() returned. When the server's bytes arrive in
pieces, it prints only the first piece.
"""
import socket
import sys

with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as sock:
    data = sock.recv(1024)  # the mistake: one recv(), as if TCP kept the write's boundary
print("Message from server:", data.decode(errors="replace"))
print("Function read call count: 1")
