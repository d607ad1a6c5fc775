"""Broken twin of our set-buf demo: it prints the sizes it asked for, as if
setsockopt() had set them exactly, instead of reading them back with getsockopt().
"""
import socket

ASKED = 3 * 1024
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
print(f"setsockopt(SO_RCVBUF, {ASKED}) and setsockopt(SO_SNDBUF, {ASKED}), then getsockopt:")
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ASKED)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ASKED)
print(f"Input buffer size: {ASKED}")  # the mistake: what was asked, not what was set
print(f"Output buffer size: {ASKED}")
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
print("asked 1: SO_RCVBUF 1, SO_SNDBUF 1: the kernel's floor, whatever is asked")
sock.close()
