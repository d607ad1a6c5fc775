"""Broken twin: an echo server that echoes what its first recv() returned, then closes.

The mistake: one recv() per client, as if one send() on the other side arrived as one
recv() here. TCP keeps no message boundaries, so long or dribbled messages lose bytes.
"""
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
port = int(sys.argv[1])
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", port))
server.listen(5)
while True:
    client, _ = server.accept()
    try:
        data = client.recv(1024)
        client.sendall(data)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
    client.close()
