#!/usr/bin/env python3
"""ch24 homework: a small HTTP/1.1 server, prefork model (standard library only).

usage: server.py PORT [ROOT] [--root DIR] [--workers N] [--max-workers M] [--host ADDR]
"""
import argparse
import ctypes
import errno
import mmap
import os
import re
import select
import signal
import socket
import stat
import struct
import sys
import time
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

SERVER_NAME = "student-ch24"
HEAD_LIMIT = 8192
TARGET_LIMIT = 4096
BODY_LIMIT = 1024 * 1024
HEAD_TIMEOUT = 5.0
IDLE_TIMEOUT = 5.0
YIELD_AFTER = 1.0
PIECE = 64 * 1024
PIECE_TIMEOUT = 3.0
LINGER_BYTES = 64 * 1024
LINGER_TIME = 2.0

PAGE = (b"<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Hello</title></head>\n"
        b"<body>\n<h1>Hello, World!</h1>\n<p>Served by a study group's Python server.</p>\n"
        b"</body>\n</html>\n")

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
    414: "URI Too Long", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}
# statuses after which the connection is kept (if the client wants it); every other error
# is about framing or limits, and the bytes after it cannot be trusted.
KEEP_OK = {200, 403, 404, 405}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".png": "image/png", ".txt": "text/plain; charset=utf-8",
}

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
HEAD_END = re.compile(rb"\n\r?\n")

# ---------------------------------------------------------------------------------------
# logging: never block on stdout (a pipe nobody reads must not stop a worker)
dropped_log_lines = 0


def log(line):
    global dropped_log_lines
    data = (line + "\n").encode("utf-8", "replace")
    try:
        p = select.poll()
        p.register(1, select.POLLOUT)
        if p.poll(0) and len(data) <= select.PIPE_BUF:
            os.write(1, data)
        else:
            dropped_log_lines += 1
    except OSError:
        dropped_log_lines += 1


def warn(line):
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# openat2(RESOLVE_BENEATH)
_libc = ctypes.CDLL(None, use_errno=True)
SYS_openat2 = 437  # x86_64 and aarch64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_have_openat2 = True


def _walk_beneath(dirfd, path, flags):
    """Fallback without openat2: walk component by component, refusing '..' and symlinks."""
    parts = [p for p in path.split(b"/") if p not in (b"", b".")]
    if path.startswith(b"/") or any(p == b".." for p in parts) or not parts:
        raise OSError(errno.EXDEV, "outside the root")
    fd = os.dup(dirfd)
    try:
        for p in parts[:-1]:
            nfd = os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def open_beneath(dirfd, path, flags):
    global _have_openat2
    if _have_openat2:
        how = OpenHow(flags, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        fd = _libc.syscall(ctypes.c_long(SYS_openat2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        e = ctypes.get_errno()
        if e != errno.ENOSYS:
            raise OSError(e, os.strerror(e))
        _have_openat2 = False
    return _walk_beneath(dirfd, path, flags)


# ---------------------------------------------------------------------------------------
class GaveUp(Exception):
    pass


class Closed(Exception):
    pass


class StopWorker(Exception):
    pass


def send_all(sock, data):
    """Send data; each piece of at most 64 KiB must be taken within 3 s."""
    view = memoryview(data)
    while view:
        piece = view[:PIECE]
        view = view[PIECE:]
        deadline = time.monotonic() + PIECE_TIMEOUT
        while piece:
            try:
                n = sock.send(piece, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
                piece = piece[n:]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise GaveUp()
            p = select.poll()
            p.register(sock.fileno(), select.POLLOUT)
            p.poll(left * 1000)


def recv_some(sock, timeout):
    """Wait at most `timeout` s for bytes. Returns bytes, b'' on end of stream, None on timeout."""
    if timeout <= 0:
        return None
    p = select.poll()
    p.register(sock.fileno(), select.POLLIN)
    if not p.poll(timeout * 1000):
        return None
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return recv_some(sock, 0.001) if timeout > 0.001 else None


# ---------------------------------------------------------------------------------------
class Request:
    pass


class HttpError(Exception):
    def __init__(self, status, why=""):
        super().__init__(why)
        self.status = status
        self.why = why


def parse_head(head):
    """Parse a request head (its blank line excluded). Raises HttpError."""
    lines = head.split(b"\n")
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    while lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise HttpError(400, "empty request")
    for ln in lines:
        if b"\r" in ln or b"\0" in ln:
            raise HttpError(400, "bare CR or NUL in the head")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "request line is not METHOD TARGET VERSION")
    method, target, version = parts
    if not TOKEN.match(method):
        raise HttpError(400, "bad method")
    m = VERSION.match(version)
    if not m:
        raise HttpError(400, "bad version")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 1:
        raise HttpError(505, "version")
    if len(target) > TARGET_LIMIT:
        raise HttpError(414, "target too long")
    if not target or any(c <= 0x20 or c == 0x7F for c in target):
        raise HttpError(400, "bad target")
    if target.startswith(b"/"):
        pass
    elif target.lower().startswith((b"http://", b"https://")):
        rest = target.split(b"//", 1)[1]
        i = rest.find(b"/")
        target = rest[i:] if i >= 0 else b"/"
    elif target == b"*" and method == b"OPTIONS":
        pass
    else:
        raise HttpError(400, "target is not origin-form")
    headers = []
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding")
        i = ln.find(b":")
        if i <= 0:
            raise HttpError(400, "header without a colon")
        name = ln[:i]
        if not TOKEN.match(name):
            raise HttpError(400, "bad header name")
        headers.append((name.lower(), ln[i + 1:].strip(b" \t")))
    req = Request()
    req.method = method.decode("ascii")
    req.target = target
    req.minor = minor
    req.headers = headers
    return req


def header_values(req, name):
    return [v for (n, v) in req.headers if n == name]


def tokens(req, name):
    out = []
    for v in header_values(req, name):
        for t in v.split(b","):
            t = t.strip(b" \t").lower()
            if t:
                out.append(t)
    return out


def check_framing(req):
    """Returns the body length. Raises HttpError for anything ambiguous."""
    hosts = header_values(req, b"host")
    if req.minor >= 1 and len(hosts) != 1:
        raise HttpError(400, "HTTP/1.1 needs exactly one Host")
    if len(hosts) > 1:
        raise HttpError(400, "two Host")
    cls = header_values(req, b"content-length")
    te = header_values(req, b"transfer-encoding")
    if te and cls:
        raise HttpError(400, "Transfer-Encoding and Content-Length")
    if te:
        raise HttpError(501, "Transfer-Encoding not supported")
    length = 0
    if cls:
        seen = set()
        for v in cls:
            for item in v.split(b","):
                item = item.strip(b" \t")
                if not item or not item.isdigit() or not all(0x30 <= c <= 0x39 for c in item):
                    raise HttpError(400, "Content-Length is not digits")
                seen.add(int(item))
        if len(seen) != 1:
            raise HttpError(400, "Content-Length values differ")
        length = seen.pop()
        if length > BODY_LIMIT:
            raise HttpError(413, "body too large")
    expect = header_values(req, b"expect")
    if expect:
        if len(expect) != 1 or expect[0].lower() != b"100-continue":
            raise HttpError(417, "unknown expectation")
    return length


# ---------------------------------------------------------------------------------------
class Worker:
    def __init__(self, listener, root_fd, report_fd, shared):
        self.listener = listener
        self.root_fd = root_fd
        self.report_fd = report_fd
        self.shared = shared
        self.phase = "accept"
        self.stop = False

    def report(self, busy):
        try:
            os.write(self.report_fd, struct.pack("=iI", os.getpid(), 1 if busy else 0))
        except OSError:
            pass

    def on_sigterm(self, signo, frame):
        if self.phase == "accept":
            os._exit(0)
        self.stop = True
        if self.phase == "idle":
            raise StopWorker()

    def run(self):
        signal.signal(signal.SIGTERM, self.on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        while not self.stop:
            self.phase = "accept"
            try:
                conn, addr = self.listener.accept()
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    warn(f"worker {os.getpid()}: accept: {e}")
                    os._exit(3)
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            self.phase = "work"
            self.report(True)
            try:
                self.serve(conn, addr)
            except StopWorker:
                pass
            except Exception as e:  # one connection must never kill the worker
                warn(f"worker {os.getpid()}: {addr[0]}:{addr[1]}: {e!r}")
            finally:
                self.phase = "work"
                try:
                    conn.close()
                except OSError:
                    pass
            self.report(False)
        os._exit(0)

    # -- one connection -------------------------------------------------------------
    def serve(self, conn, addr):
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 3, 0))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer = f"{addr[0]}:{addr[1]}"
        buf = b""
        served = 0
        while True:
            # read one head: one deadline for the whole head
            start = time.monotonic()
            deadline = start + HEAD_TIMEOUT
            while True:
                # skip empty lines before a request line (RFC 9112 §2.2)
                while buf.startswith(b"\r\n") or buf.startswith(b"\n"):
                    buf = buf[2:] if buf.startswith(b"\r\n") else buf[1:]
                m = HEAD_END.search(buf, 0, HEAD_LIMIT)
                if m:
                    break
                if len(buf) >= HEAD_LIMIT:
                    self.error(conn, 431, "head over 8 KiB")
                    return
                now = time.monotonic()
                if not buf and served:
                    # idle kept-alive connection
                    self.phase = "idle"
                    if self.stop:
                        return
                    if now < start + YIELD_AFTER:
                        wait = start + YIELD_AFTER - now
                    else:
                        wait = min(deadline - now, 0.25)
                    data = recv_some(conn, wait)
                    self.phase = "work"
                    if data is None:
                        if time.monotonic() >= deadline:
                            self.quiet_close(conn)
                            return
                        if self.should_yield():
                            self.quiet_close(conn)
                            return
                        continue
                else:
                    data = recv_some(conn, deadline - now)
                    if data is None:
                        if buf:
                            self.error(conn, 408, "head not complete within 5 s")
                        else:
                            self.quiet_close(conn)
                        return
                if data == b"":
                    # end of stream: nothing more to answer
                    return
                buf += data
            head = buf[:m.start() + 1]
            buf = buf[m.end():]
            try:
                req = parse_head(head)
                length = check_framing(req)
            except HttpError as e:
                self.error(conn, e.status, e.why)
                return
            # the body: read and ignored
            if length and len(buf) < length and header_values(req, b"expect"):
                send_all(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            body_deadline = time.monotonic() + HEAD_TIMEOUT
            while len(buf) < length:
                data = recv_some(conn, body_deadline - time.monotonic())
                if data is None:
                    self.error(conn, 408, "body not complete")
                    return
                if data == b"":
                    return
                buf += data
                body_deadline = time.monotonic() + HEAD_TIMEOUT
            buf = buf[length:]
            conn_tokens = tokens(req, b"connection")
            if req.minor >= 1:
                keep = b"close" not in conn_tokens
            else:
                keep = b"keep-alive" in conn_tokens and b"close" not in conn_tokens
            if self.stop:
                keep = False
            keep = self.respond(conn, req, keep)
            served += 1
            if not keep:
                self.lingering_close(conn)
                return

    def should_yield(self):
        """A waiting client is a certainty; a kept-alive connection only a promise."""
        if not self.shared[0]:
            return False
        p = select.poll()
        p.register(self.listener.fileno(), select.POLLIN)
        return bool(p.poll(0))

    def quiet_close(self, conn):
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def lingering_close(self, conn):
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + LINGER_TIME
        got = 0
        while got < LINGER_BYTES:
            try:
                data = recv_some(conn, deadline - time.monotonic())
            except OSError:
                return
            if not data:
                return
            got += len(data)

    def head_bytes(self, status, ctype, length, keep, extra=()):
        lines = [f"HTTP/1.1 {status} {REASONS[status]}", f"Server: {SERVER_NAME}",
                 f"Date: {formatdate(usegmt=True)}"]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {length}")
        lines.extend(extra)
        lines.append("Connection: keep-alive" if keep else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def error(self, conn, status, why, method="GET", target=b"-", keep=False):
        body = f"{status} {REASONS[status]}\n".encode()
        extra = ["Allow: GET, HEAD"] if status == 405 else []
        data = self.head_bytes(status, "text/plain; charset=utf-8", len(body), keep, extra)
        if method != "HEAD":
            data += body
        log(f"{self.peer} {method} {target.decode('latin-1')} {status} ({why})" if why
            else f"{self.peer} {method} {target.decode('latin-1')} {status}")
        try:
            send_all(conn, data)
        except GaveUp:
            log(f"{self.peer} gave up: the client does not read")
            return False
        except OSError:
            return False
        if not keep:
            self.lingering_close(conn)
        return keep

    def respond(self, conn, req, keep):
        """Answer one request. Returns whether the connection may carry another."""
        tgt = req.target
        path = tgt.split(b"?", 1)[0].split(b"#", 1)[0]
        if req.method not in ("GET", "HEAD"):
            return self.error(conn, 405, "", req.method, tgt, keep) and keep
        head_only = req.method == "HEAD"
        if path == b"/":
            data = self.head_bytes(200, "text/html; charset=utf-8", len(PAGE), keep)
            if not head_only:
                data += PAGE
            log(f"{self.peer} {req.method} {tgt.decode('latin-1')} 200")
            try:
                send_all(conn, data)
            except GaveUp:
                log(f"{self.peer} gave up: the client does not read")
                return False
            except OSError:
                return False
            return keep
        return self.serve_file(conn, req, path, head_only, keep)

    def serve_file(self, conn, req, path, head_only, keep):
        tgt = req.target
        if self.root_fd is None:
            return self.error(conn, 404, "", req.method, tgt, keep) and keep
        rel = unquote_to_bytes(path)
        if b"\0" in rel:
            return self.error(conn, 404, "NUL in path", req.method, tgt, keep) and keep
        # the target is origin-form: drop its one leading "/"; what is left is relative to
        # the root (another "/" makes it absolute, and openat2 refuses it)
        rel = rel[1:]
        if not rel:
            return self.error(conn, 404, "", req.method, tgt, keep) and keep
        try:
            fd = open_beneath(self.root_fd, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as e:
            status = 403 if e.errno == errno.EACCES else 404
            return self.error(conn, status, e.strerror or "", req.method, tgt, keep) and keep
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return self.error(conn, 404, "a directory", req.method, tgt, keep) and keep
            if not stat.S_ISREG(st.st_mode):
                return self.error(conn, 403, "not a regular file", req.method, tgt, keep) and keep
            size = st.st_size
            ext = os.path.splitext(rel)[1].decode("latin-1").lower()
            ctype = CONTENT_TYPES.get(ext, "application/octet-stream")
            head = self.head_bytes(200, ctype, size, keep)
            log(f"{self.peer} {req.method} {tgt.decode('latin-1')} 200 {size}")
            try:
                if head_only or size == 0:
                    send_all(conn, head)
                    return keep
                left = size
                first = True
                while left:
                    chunk = os.read(fd, min(PIECE, left))
                    if not chunk:
                        log(f"{self.peer} {tgt.decode('latin-1')}: the file shrank; closing")
                        return False
                    left -= len(chunk)
                    send_all(conn, head + chunk if first else chunk)
                    first = False
                return keep
            except GaveUp:
                log(f"{self.peer} gave up: the client does not read")
                return False
            except OSError:
                return False
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------
class Parent:
    def __init__(self, args, listener, root_fd):
        self.args = args
        self.listener = listener
        self.root_fd = root_fd
        self.workers = {}        # pid -> "idle" | "busy"
        self.retiring = set()
        self.stopping = False
        self.shared = mmap.mmap(-1, mmap.PAGESIZE)   # shared[0]: pool full and none idle
        self.msg_r, self.msg_w = os.pipe()
        os.set_blocking(self.msg_r, False)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.backoff = 0.0
        self.next_fork = 0.0
        self.last_shrink = time.monotonic()
        self.last_busy = time.monotonic()

    def on_signal(self, signo, frame):
        if signo in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True

    def spawn(self):
        sigs = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                for s in sigs:
                    signal.signal(s, signal.SIG_DFL)
                for fd in (self.msg_r, self.wake_r, self.wake_w):
                    os.close(fd)
                w = Worker(self.listener, self.root_fd, self.msg_w, self.shared)
                signal.signal(signal.SIGTERM, w.on_sigterm)
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                w.run()
            except BaseException as e:
                warn(f"worker {os.getpid()}: {e!r}")
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.workers[pid] = "idle"
        return pid

    def update_shared(self):
        idle = sum(1 for s in self.workers.values() if s == "idle")
        full = len(self.workers) >= self.args.max_workers and idle == 0
        self.shared[0] = 1 if full else 0

    def run(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self.on_signal)
        signal.signal(signal.SIGCHLD, lambda s, f: None)
        signal.set_wakeup_fd(self.wake_w)
        for _ in range(self.args.workers):
            self.spawn()
        poller = select.poll()
        poller.register(self.msg_r, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        pending = b""
        while not self.stopping:
            try:
                poller.poll(250)
            except InterruptedError:
                pass
            for fd in (self.wake_r,):
                try:
                    while os.read(fd, 512):
                        pass
                except BlockingIOError:
                    pass
            try:
                while True:
                    chunk = os.read(self.msg_r, 4096)
                    if not chunk:
                        break
                    pending += chunk
            except BlockingIOError:
                pass
            while len(pending) >= 8:
                pid, busy = struct.unpack("=iI", pending[:8])
                pending = pending[8:]
                if pid in self.workers:
                    self.workers[pid] = "busy" if busy else "idle"
                    if busy:
                        self.backoff = 0.0   # the episode ends when a worker serves a client
                        self.last_busy = time.monotonic()
            self.reap()
            if self.stopping:
                break
            self.adjust()
            self.update_shared()
        self.shutdown()

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.workers.pop(pid, None)
            if pid in self.retiring:
                self.retiring.discard(pid)
                continue
            if not self.stopping:
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    if self.backoff == 0.0:
                        warn(f"worker {pid} died (status {code}); restarting with a pause")
                        self.backoff = 0.05
                    else:
                        self.backoff = min(self.backoff * 2, 5.0)
                    self.next_fork = time.monotonic() + self.backoff

    def adjust(self):
        now = time.monotonic()
        live = {p: s for p, s in self.workers.items() if p not in self.retiring}
        idle = sum(1 for s in live.values() if s == "idle")
        if now >= self.next_fork:
            if len(live) < self.args.workers:
                self.spawn()
                return
            if idle == 0 and len(self.workers) < self.args.max_workers:
                self.spawn()
                return
        # shrink: one idle worker beyond --workers a second, once the load is gone
        if len(live) > self.args.workers and idle > 1 and now - self.last_shrink >= 1.0:
            for pid, s in live.items():
                if s == "idle":
                    self.retiring.add(pid)
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    break
            self.last_shrink = now

    def shutdown(self):
        for pid in list(self.workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3.0
        while self.workers:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.workers.pop(pid, None)
                continue
            if time.monotonic() > deadline:
                for p in list(self.workers):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                deadline = float("inf")
            time.sleep(0.02)
        # reap anything left
        while True:
            try:
                if os.waitpid(-1, 0)[0] == 0:
                    break
            except ChildProcessError:
                break
        if dropped_log_lines:
            warn(f"{dropped_log_lines} log lines dropped")


def main():
    ap = argparse.ArgumentParser(description="a small HTTP/1.1 prefork server")
    ap.add_argument("port", type=int)
    ap.add_argument("root_pos", nargs="?", metavar="ROOT")
    ap.add_argument("--root")
    ap.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--max-workers", type=int, default=64)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    root = args.root or args.root_pos
    args.workers = max(1, args.workers)
    args.max_workers = max(args.workers, args.max_workers)

    root_fd = None
    if root:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    log(f"listening on {args.host}:{args.port}, root {root or '(none)'}, "
        f"workers {args.workers}..{args.max_workers}")
    Parent(args, listener, root_fd).run()


if __name__ == "__main__":
    main()
