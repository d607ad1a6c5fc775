"""Our nagle-client written in Python: each request in two writes, the whole reply
read, each round trip timed; --nodelay sets TCP_NODELAY first.
Usage: nagle_client.py IP PORT [--nodelay]
"""
import socket
import sys
import time

ip, port = sys.argv[1], int(sys.argv[2])
nodelay = "--nodelay" in sys.argv[3:]
rounds = 10
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if nodelay:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.connect((ip, port))
times = []
for i in range(1, rounds + 1):
    request = f"request {i}\n".encode()
    started = time.perf_counter()
    sock.sendall(request[:8])
    sock.sendall(request[8:])
    reply = b""
    while not reply.endswith(b"\n"):
        got = sock.recv(4096)
        if not got:
            sys.exit("error: the server closed the connection in the middle of a reply")
        reply += got
    times.append((time.perf_counter() - started) * 1000)
sock.close()
mode = "TCP_NODELAY on" if nodelay else "Nagle on (the default)"
print(f"{rounds} round trips, each request in 2 writes, {mode}: "
      f"median {sorted(times)[rounds // 2]:.2f} ms (min {min(times):.2f} ms, max {max(times):.2f} ms)")
