"""The book's uecho_con_client in Python, correct: the model the Python twins patch.

connect() on a UDP socket: the kernel keeps only the server's datagrams for it and
reports ECONNREFUSED when nobody listens; a reply is received whole (a buffer of the
largest datagram); a lost one is sent again, three tries of a second each.
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
                data = sock.recv(65535)
                break
            except socket.timeout:
                continue
        else:
            sys.exit("no reply after 3 tries")
    except ConnectionRefusedError:
        sys.exit("connection refused")
    print("Message from server:", data.decode(errors="replace").rstrip("\n"))
