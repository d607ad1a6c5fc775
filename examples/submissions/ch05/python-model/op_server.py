"""The book's op_server in Python, correct: the model the Python twins patch.

The request is read whole whatever the pieces it comes in (a count byte, then 4 bytes
per operand and the operator), ints are little-endian as the book's C sends them, the
result wraps to 32 bits as a C int does, a request cut short or stalled ends that client
only (3 s for the whole request), and a bad count or operator is refused.
"""
import signal
import socket
import struct
import sys
import time

signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def recv_exact(conn, n, deadline):
    # settimeout() bounds one recv() only: set it to what is left of the whole
    # request's time before each one, or a client sending a byte every second
    # holds the server for ever.
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request stalled: its 3 s are up")
        conn.settimeout(left)
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
    deadline = time.monotonic() + 3
    try:
        count = recv_exact(conn, 1, deadline)[0]
        if not 1 <= count <= 100:
            raise ValueError(f"bad count {count}")
        body = recv_exact(conn, count * 4 + 1, deadline)
        operands = struct.unpack(f"<{count}i", body[:-1])
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
        conn.sendall(struct.pack("<i", result))
    except (OSError, EOFError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
    conn.close()
