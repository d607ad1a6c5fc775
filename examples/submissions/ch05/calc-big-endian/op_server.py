"""Broken twin: a calculator server that reads and writes big-endian ints.

Network byte order (ch03) is the right habit for most protocols, but this one is the
book's, which sends ints as they lie in memory on the group's machines: little-endian.
Everything else here is right (read loops, deadline, bad requests refused).
"""
import signal
import socket
import struct
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("request cut short")
        data += chunk
    return data


def wrap(x):
    return (x + 2**31) % 2**32 - 2**31


server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(5)
while True:
    conn, _ = server.accept()
    conn.settimeout(3)
    try:
        count = recv_exact(conn, 1)[0]
        if not 1 <= count <= 100:
            raise ValueError(f"bad count {count}")
        body = recv_exact(conn, count * 4 + 1)
        operands = struct.unpack(f">{count}i", body[:-1])  # the mistake: '>' is big-endian
        op = chr(body[-1])
        result = operands[0]
        for x in operands[1:]:
            if op == "+":
                result = wrap(result + x)
            elif op == "-":
                result = wrap(result - x)
            elif op == "*":
                result = wrap(result * x)
            else:
                raise ValueError(f"bad operator {op!r}")
        if op not in "+-*":
            raise ValueError(f"bad operator {op!r}")
        conn.sendall(struct.pack(">i", result))
    except (OSError, EOFError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
    conn.close()
