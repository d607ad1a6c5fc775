"""Broken twin of our reuseaddr demo: the *client* closes first, so TIME_WAIT holds the
client's port, the server's port is free, and the restart it shows proves nothing.
"""
import socket
import time


def run(reuse):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1 if reuse else 0)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = listener.getsockname()
    client = socket.create_connection(server)
    conn, _ = listener.accept()
    client.close()  # the mistake: the client closes first
    time.sleep(0.1)
    conn.close()
    listener.close()
    print(f"a server {'with' if reuse else 'without'} SO_REUSEADDR closed first: its connection {server[0]}:{server[1]} -> (client) is in TIME_WAIT")
    return server


def restart(addr, reuse):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1 if reuse else 0)
    try:
        s.bind(addr)
        result = "succeeds"
    except OSError:
        result = "fails: EADDRINUSE"
    s.close()
    print(f"  restart {'with' if reuse else 'without'} SO_REUSEADDR: bind({addr[0]}:{addr[1]}) {result}")


old = run(False)
restart(old, False)
restart(old, True)
old = run(True)
restart(old, True)
