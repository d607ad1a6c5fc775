"""Broken twin of our states demo: the *server* closes first, but the demo says the
client did. TIME_WAIT then sits on the server's side, not where the demo points.
"""
import socket
import time

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
server = listener.getsockname()
print(f"server {server[0]}:{server[1]} after listen()        LISTEN")
client = socket.create_connection(server)
me = client.getsockname()
conn, _ = listener.accept()
print(f"client {me[0]}:{me[1]} after connect()       ESTABLISHED")
conn.close()  # the mistake: the server side closes first
time.sleep(0.2)
client.close()
time.sleep(0.2)
print("client after its close() (it closed first)   (claimed)")
listener.close()
