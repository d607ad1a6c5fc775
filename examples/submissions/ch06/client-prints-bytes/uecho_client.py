"""Broken twin: a UDP echo client that prints the reply's bytes object, not its text.

print(data) on bytes shows b'...' with escapes. Everything else is right: a timeout,
three tries, a message and exit 1 when no reply comes.
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
            data, sender = sock.recvfrom(65507)
        except socket.timeout:
            continue
        if sender == server:
            break
    else:
        sys.exit(f"no reply from {server[0]}:{server[1]} after 3 tries")
    print("Message from server:", data)  # the mistake: data.decode() is the text
