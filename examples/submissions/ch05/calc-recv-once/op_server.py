"""Broken twin: a calculator server that reads the request body with one recv().

It assumes the client's whole request arrives at once. When it comes in pieces, the
server computes with what it has and answers garbage, or fails.
"""
import signal
import socket
import struct
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(5)
while True:
    conn, _ = server.accept()
    conn.settimeout(3)
    try:
        head = conn.recv(1)
        if not head or not 1 <= head[0] <= 100:
            raise ValueError("bad or missing count")
        count = head[0]
        body = conn.recv(1024)  # the mistake: one recv() for the rest of the request
        if len(body) < count * 4 + 1:
            raise ValueError(f"got {len(body)} of {count * 4 + 1} bytes")
        operands = struct.unpack(f"<{count}i", body[: count * 4])
        op = chr(body[count * 4])
        if op not in "+-*":
            raise ValueError(f"bad operator {op!r}")
        result = operands[0]
        for x in operands[1:]:
            result = eval(f"{result} {op} {x}")
            result = (result + 2**31) % 2**32 - 2**31
        conn.sendall(struct.pack("<i", result))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
    conn.close()
