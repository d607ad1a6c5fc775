"""Broken twin of our echo-server: with --nodelay it sets TCP_NODELAY on the
listening socket after accept(), the serv_sock/clnt_sock mix-up. Linux copies the
listening socket's options to the sockets accept() makes from then on; the client
already accepted keeps Nagle on, and each reply's second piece waits.
Usage: echo_server.py PORT [--nodelay]
"""
import signal
import socket
import sys

port = int(sys.argv[1])
nodelay = "--nodelay" in sys.argv[2:]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
serv_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serv_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serv_sock.bind(("127.0.0.1", port))
serv_sock.listen(128)
print(f"listening on 127.0.0.1:{serv_sock.getsockname()[1]}", flush=True)
while True:
    clnt_sock, _ = serv_sock.accept()
    if nodelay:
        serv_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the mistake
    pending = b""
    while True:
        got = clnt_sock.recv(4096)
        if not got:
            break
        pending += got
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            line += b"\n"
            half = max(1, len(line) // 2)
            clnt_sock.sendall(line[:half])
            clnt_sock.sendall(line[half:])
    clnt_sock.close()
