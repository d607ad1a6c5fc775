"""Broken twin: a connected UDP client that reads replies into 16 bytes.

recv(16) on a UDP socket returns the first 16 bytes of the datagram and the rest is
discarded: there is no second read for the remainder, as there would be on TCP.
"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((sys.argv[1], int(sys.argv[2])))
sock.settimeout(1)
while True:
    try:
        line = input("Insert message(q to quit): ")
    except EOFError:
        break
    if line in ("q", "Q"):
        break
    try:
        for _ in range(3):
            sock.send((line + "\n").encode())
            try:
                data = sock.recv(16)  # the mistake: a datagram longer than 16 bytes is cut
                break
            except socket.timeout:
                continue
        else:
            sys.exit("no reply after 3 tries")
    except ConnectionRefusedError:
        sys.exit("connection refused")
    print("Message from server:", data.decode(errors="replace").rstrip("\n"))
