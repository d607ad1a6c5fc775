#!/usr/bin/env python3
# op_server.py -- the book's ch05 op_server.c in Python, done carefully:
# one request per connection: count (1 byte, 1..100), count little-endian
# int32 operands, one operator byte; reply one little-endian int32.
# Reads exactly as many bytes as the protocol says (loop), wraps like a C int,
# drops bad requests (count 0 / > 100, unknown operator, cut short, stalled).
import socket
import struct
import sys

READ_TIMEOUT = 2.0

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"the client closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf

def wrap32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x

def calculate(ops, op):
    result = ops[0]
    for v in ops[1:]:
        if op == "+":
            result = wrap32(result + v)
        elif op == "-":
            result = wrap32(result - v)
        elif op == "*":
            result = wrap32(result * v)
    return result

def serve(clnt):
    clnt.settimeout(READ_TIMEOUT)
    cnt = recv_exact(clnt, 1)[0]
    if cnt < 1 or cnt > 100:
        print(f"operand count {cnt}: closed", file=sys.stderr)
        return
    body = recv_exact(clnt, 4 * cnt + 1)
    ops = list(struct.unpack(f"<{cnt}i", body[:-1]))
    op = chr(body[-1])
    if op not in "+-*":
        print(f"unknown operator {op!r}: closed", file=sys.stderr)
        return
    clnt.sendall(struct.pack("<i", calculate(ops, op)))

def main():
    if len(sys.argv) != 2:
        print(f"Usage : {sys.argv[0]} <port>")
        sys.exit(1)
    serv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    serv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    serv.bind(("127.0.0.1", int(sys.argv[1])))
    serv.listen(16)
    while True:
        clnt, addr = serv.accept()
        try:
            serve(clnt)
        except EOFError as e:
            print(f"request cut short: {e}; closed", file=sys.stderr)
        except socket.timeout:
            print("request stalled; closed", file=sys.stderr)
        except OSError as e:
            print(f"client error: {e}", file=sys.stderr)
        finally:
            clnt.close()

if __name__ == "__main__":
    main()
