"""Broken twin: an echo server that serves its first client and exits.

The mistake: no loop around accept(). Fails every check that needs a second client.
"""
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
port = int(sys.argv[1])
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", port))
server.listen(5)
client, _ = server.accept()
try:
    while True:
        data = client.recv(1024)
        if not data:
            break
        client.sendall(data)
except OSError as e:
    print(f"error: {e}", file=sys.stderr)
client.close()
server.close()
