#!/usr/bin/env python3
# ch24 homework, the quick version: one thread per connection.
import os
import socket
import sys
import threading
from urllib.parse import unquote

PAGE = b"<!DOCTYPE html>\n<html><body><h1>Hello, World!</h1></body></html>\n"
TYPES = {".html": "text/html", ".css": "text/css", ".js": "application/javascript",
         ".png": "image/png", ".txt": "text/plain"}

port = int(sys.argv[1])
root = None
for a in sys.argv[2:]:
    if a.startswith("--root="):
        root = a[len("--root="):]
    elif not a.startswith("--"):
        root = a


def reply(conn, status, ctype, body, keep, head_only=False, extra=""):
    head = (f"HTTP/1.1 {status}\r\nServer: naive\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n")
    conn.sendall(head.encode() + (b"" if head_only else body))


def handle(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                if len(buf) > 8192:
                    reply(conn, "431 Request Header Fields Too Large", "text/plain", b"too large\n", False)
                    return
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                reply(conn, "400 Bad Request", "text/plain", b"bad request\n", False)
                return
            method, target, version = parts
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    k = k.strip().lower()
                    if k not in headers:          # first one wins
                        headers[k] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            while len(buf) < length:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            buf = buf[length:]
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            path = target.split("?")[0]
            if method not in ("GET", "HEAD"):
                reply(conn, "405 Method Not Allowed", "text/plain", b"no\n", keep, extra="Allow: GET, HEAD\r\n")
            elif path == "/":
                reply(conn, "200 OK", "text/html; charset=utf-8", PAGE, keep, method == "HEAD")
            else:
                path = unquote(path)
                if root is None or ".." in path:
                    reply(conn, "404 Not Found", "text/plain", b"not found\n", keep, method == "HEAD")
                else:
                    full = os.path.join(root, path.lstrip("/"))
                    try:
                        with open(full, "rb") as f:
                            body = f.read()
                        ext = os.path.splitext(full)[1]
                        reply(conn, "200 OK", TYPES.get(ext, "application/octet-stream"), body, keep,
                              method == "HEAD")
                    except OSError:
                        reply(conn, "404 Not Found", "text/plain", b"not found\n", keep, method == "HEAD")
            print(method, target, flush=True)
            if not keep:
                return
    except (OSError, ValueError) as e:
        print("error:", e, flush=True)
    finally:
        conn.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(50)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
