"""Broken twin: a file client that saves what one recv() returned.

A file arrives as many reads; this client keeps only the first and thanks the server
for a file it does not have.
"""
import socket
import sys

out = sys.argv[3] if len(sys.argv) > 3 else "receive.dat"
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as sock:
    data = sock.recv(65536)  # the mistake: one recv() for the whole file
    with open(out, "wb") as f:
        f.write(data)
    print("Received file data")
    sock.sendall(b"Thank you\0")
