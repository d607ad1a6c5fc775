"""Broken twin: a "connected" UDP client that never calls connect().

It uses sendto()/recvfrom() and prints whatever arrives, from anyone. Without
connect(), the kernel neither filters strangers nor reports ECONNREFUSED.
"""
import socket
import sys

server = (sys.argv[1], int(sys.argv[2]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1)
while True:
    try:
        line = input("Insert message(q to quit): ")
    except EOFError:
        break
    if line in ("q", "Q"):
        break
    for _ in range(3):
        sock.sendto((line + "\n").encode(), server)
        try:
            data, _ = sock.recvfrom(65507)  # the mistake: from anyone
            break
        except socket.timeout:
            continue
    else:
        sys.exit(f"no reply from {server[0]}:{server[1]} after 3 tries")
    print("Message from server:", data.decode(errors="replace").rstrip("\n"))
