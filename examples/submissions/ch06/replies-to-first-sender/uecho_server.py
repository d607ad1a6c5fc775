"""Broken twin: a UDP echo server that remembers its first client and answers only it.

Written with TCP in mind, it treats the first sender as "the connection". With two
clients taking turns, the second one's echoes go to the first.
"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[1])))
client = None
while True:
    data, sender = sock.recvfrom(65507)
    if client is None:
        client = sender  # the mistake: reply to this address from now on
    sock.sendto(data, client)
