#!/usr/bin/env python3
# tcp_client.py -- the book's ch02 tcp_client.c in Python: read() one byte at a
# time until end of stream and count the calls.
import socket
import sys

def main():
    if len(sys.argv) != 3:
        print(f"Usage : {sys.argv[0]} <IP> <port>")
        sys.exit(1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.connect((sys.argv[1], int(sys.argv[2])))
    except OSError as e:
        print(f"connect() error: {e}", file=sys.stderr)
        sys.exit(1)

    message = b""
    str_len = 0
    while True:
        b = sock.recv(1)          # read(sock, &message[idx++], 1)
        if not b:
            break
        message += b
        str_len += 1
        if len(message) >= 4096:  # the book's array has no bound; ours does
            break
    sock.close()
    print("Message from server: %s " % message.decode(errors="replace"))
    print("Function read call count: %d " % str_len)

if __name__ == "__main__":
    main()
