"""Broken twin: a calculator client that sends its operands big-endian (network order).

The book's protocol is little-endian; the server reads 5 as 83886080.
"""
import socket
import struct
import sys

count = int(input("Operand count: "))
operands = [int(input(f"Operand {i + 1}: ")) for i in range(count)]
op = input("Operator: ").strip()
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as sock:
    sock.sendall(bytes([count]) + struct.pack(f">{count}i", *operands) + op.encode())  # the mistake
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            sys.exit("error: the server closed without a result")
        data += chunk
print("Operation result:", struct.unpack(">i", data)[0])
