"""Broken twin: a hello client that takes its arguments in the wrong order.

The book's clients take `<IP> <port>`; this one reads the port from the first argument,
so int("127.0.0.1") raises ValueError and it dies before it connects.
"""
import socket
import sys

port = int(sys.argv[1])  # the mistake: argv[1] is the IP address
host = sys.argv[2]
with socket.create_connection((host, port)) as sock:
    chunks = []
    while True:
        data = sock.recv(1024)
        if not data:
            break
        chunks.append(data)
print("Message from server:", b"".join(chunks).decode())
