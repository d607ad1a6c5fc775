"""A correct thread-per-client echo server, graded as ch12: it fails single-process.

It serves everyone, but with a thread per client, which is ch18's model, not select().
"""
import signal
import socket
import sys
import threading

signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def serve(conn):
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    conn.close()


listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(128)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
