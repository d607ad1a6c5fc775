"""Broken twin: a file server that opens the file in text mode.

open(path) decodes the bytes as UTF-8 text: a binary file raises UnicodeDecodeError
and the server dies before it sends a byte. A text file goes through. Send bytes:
open(path, "rb").
"""
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(5)
path = sys.argv[2]
while True:
    conn, _ = server.accept()
    with open(path) as f:  # the mistake: text mode
        data = f.read().encode()
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    word = b""
    while True:
        chunk = conn.recv(1024)
        if not chunk:
            break
        word += chunk
    print("Message from client:", word.split(b"\0")[0].decode(errors="replace"), flush=True)
    conn.close()
