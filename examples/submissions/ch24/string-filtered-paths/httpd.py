"""An HTTP/1.1 server for chapter 24, correct but for one thing (see MISTAKE).

Reads the head until the blank line with an 8 KiB limit and one deadline, answers
200/404/405/400/408/431, keeps connections alive, drains before closing, and serves
files beneath a root directory.
Usage: httpd.py PORT [ROOT]
"""
import os
import signal
import socket
import sys
import time
import urllib.parse

PAGE = b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Hello</title></head><body><h1>Hello, World!</h1></body></html>\n"
TYPES = {".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
MAX_HEAD = 8192
DEADLINE = 5.0


def response(status, reason, body, ctype="text/html; charset=utf-8", head_only=False, keep=True, allow=False):
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n"
    if allow:
        head += "Allow: GET, HEAD\r\n"
    return head.encode() + b"\r\n" + (b"" if head_only else body)


def error(status, reason, keep=False, allow=False, head_only=False):
    return response(status, reason, f"<h1>{status} {reason}</h1>\n".encode(), keep=keep, allow=allow, head_only=head_only)


def file_response(root, target, head_only, keep):
    path = urllib.parse.unquote(target.split("?")[0])
    # MISTAKE: the path is checked as a string. ".." is refused, but a symlink inside
    # the root that points outside is followed by open(): the string never shows it.
    if ".." in path.split("/"):
        return error(404, "Not Found", keep, head_only=head_only)
    full = os.path.join(root, path.lstrip("/"))
    if not os.path.isfile(full):
        return error(404, "Not Found", keep, head_only=head_only)
    with open(full, "rb") as f:
        body = f.read()
    return response(200, "OK", body, TYPES.get(os.path.splitext(full)[1], "application/octet-stream"), head_only, keep)


def read_head(conn, buf, started):
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return buf, "too large"
        left = DEADLINE - (time.monotonic() - started)
        if left <= 0:
            return buf, "timeout"
        conn.settimeout(left)
        try:
            data = conn.recv(4096)
        except socket.timeout:
            return buf, "timeout"
        if not data:
            return buf, "closed"
        buf += data
    return buf, None


def serve(conn, root):
    buf = b""
    while True:
        buf, problem = read_head(conn, buf, time.monotonic())
        if problem == "closed" or (problem == "timeout" and not buf):
            return
        if problem == "too large":
            conn.sendall(error(431, "Request Header Fields Too Large"))
            return
        if problem == "timeout":
            conn.sendall(error(408, "Request Timeout"))
            return
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            conn.sendall(error(400, "Bad Request"))
            return
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        length = int(headers.get("content-length", "0") or 0)
        while len(buf) < length:
            conn.settimeout(DEADLINE)
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        buf = buf[length:]
        keep = version == "HTTP/1.1" and headers.get("connection") != "close"
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            out = error(405, "Method Not Allowed", keep, allow=True)
        elif target == "/":
            out = response(200, "OK", PAGE, head_only=head_only, keep=keep)
        elif root:
            out = file_response(root, target, head_only, keep)
        else:
            out = error(404, "Not Found", keep, head_only=head_only)
        conn.sendall(out)
        if not keep:
            return


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    root = sys.argv[2] if len(sys.argv) > 2 else None
    listener = socket.socket()
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        try:
            serve(conn, root)
            # A lingering close, with one deadline: drain for at most 2 s in all.
            conn.shutdown(socket.SHUT_WR)
            until = time.monotonic() + 2
            while time.monotonic() < until:
                conn.settimeout(max(0.01, until - time.monotonic()))
                if not conn.recv(65536):
                    break
        except OSError:
            pass
        conn.close()


main()
