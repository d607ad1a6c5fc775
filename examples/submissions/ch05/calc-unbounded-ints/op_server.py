"""Broken twin: a calculator server that computes with Python's unbounded ints.

2147483647 + 1 is 2147483648 in Python, which does not fit the 4-byte result:
struct.pack raises, and the client gets no answer. A C int wraps to -2147483648.
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
        operands = struct.unpack(f"<{count}i", body[:-1])
        op = chr(body[-1])
        result = operands[0]
        for x in operands[1:]:
            if op == "+":
                result = result + x  # the mistake: no wrap to 32 bits
            elif op == "-":
                result = result - x  # the mistake: no wrap to 32 bits
            elif op == "*":
                result = result * x  # the mistake: no wrap to 32 bits
            else:
                raise ValueError(f"bad operator {op!r}")
        if op not in "+-*":
            raise ValueError(f"bad operator {op!r}")
        conn.sendall(struct.pack("<i", result))
    except (OSError, EOFError, ValueError, struct.error) as e:
        print(f"error: {e}", file=sys.stderr)
    conn.close()
