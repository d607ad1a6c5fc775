#!/usr/bin/env python3
# chat_clnt.py -- the book's chat_clnt.c (two threads: send_msg / recv_msg)
# in Python. Sends "[name] line", prints what the room sends, q/Q quits.
# As written by this member, end of input is not handled: readline() returns ''
# at EOF, the "q" test fails, and "[name] " is sent again and again, forever
# (the book's fgets() version resends the last line the same way).
import socket
import sys
import threading

BUF_SIZE = 100

def send_msg(sock, name):
    while True:
        msg = sys.stdin.readline()
        if msg == "q\n" or msg == "Q\n":
            sock.close()
            sys.stdout.flush()
            import os
            os._exit(0)
        name_msg = f"{name} {msg}"
        sock.sendall(name_msg.encode())

def recv_msg(sock):
    while True:
        try:
            data = sock.recv(BUF_SIZE + 20)
        except OSError:
            return
        if not data:
            return
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()

def main():
    if len(sys.argv) != 4:
        print(f"Usage : {sys.argv[0]} <IP> <port> <name>")
        sys.exit(1)
    name = f"[{sys.argv[3]}]"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.connect((sys.argv[1], int(sys.argv[2])))
    except OSError as e:
        print(f"connect() error: {e}", file=sys.stderr)
        sys.exit(1)
    snd = threading.Thread(target=send_msg, args=(sock, name))
    rcv = threading.Thread(target=recv_msg, args=(sock,))
    snd.start()
    rcv.start()
    snd.join()
    rcv.join()
    sock.close()

if __name__ == "__main__":
    main()
