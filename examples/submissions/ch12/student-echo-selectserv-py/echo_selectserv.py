#!/usr/bin/env python3
# echo_selectserv.py -- the book's ch12 echo_selectserv.c in Python, with what
# the chapter asks for: every client socket non-blocking, unsent echo kept in
# a per-client outbox (watched for writability only while non-empty), and no
# more reading from a client whose outbox holds 256 KiB (backpressure).
import errno
import select
import socket
import sys

BUF_SIZE = 65536
OUTBOX_LIMIT = 256 * 1024

def main():
    if len(sys.argv) != 2:
        print(f"Usage : {sys.argv[0]} <port>")
        sys.exit(1)
    serv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    serv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    serv.bind(("127.0.0.1", int(sys.argv[1])))
    serv.listen(128)
    serv.setblocking(False)

    outbox = {}      # sock -> bytearray of echo not yet written
    clients = set()

    def drop(s):
        clients.discard(s)
        outbox.pop(s, None)
        s.close()

    while True:
        rset = [serv] + [c for c in clients if len(outbox[c]) < OUTBOX_LIMIT]
        wset = [c for c in clients if outbox[c]]
        try:
            readable, writable, _ = select.select(rset, wset, [])
        except InterruptedError:
            continue

        for s in readable:
            if s is serv:
                while True:
                    try:
                        c, addr = serv.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            break
                        raise
                    c.setblocking(False)
                    clients.add(c)
                    outbox[c] = bytearray()
                continue
            if s not in clients:
                continue
            try:
                data = s.recv(BUF_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                drop(s)            # ECONNRESET etc.
                continue
            if not data:
                drop(s)            # close request
                continue
            outbox[s] += data
            try:                   # try to write right away
                n = s.send(outbox[s])
                del outbox[s][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(s)

        for s in writable:
            if s not in clients:
                continue
            try:
                n = s.send(outbox[s])
                del outbox[s][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(s)

if __name__ == "__main__":
    main()
