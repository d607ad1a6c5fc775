"""Broken twin: a UDP echo server that treats an empty datagram as end of stream.

recvfrom() returning 0 bytes means end of stream on TCP; on UDP it is a datagram with
no payload, and there is no stream to end. This server stops serving at the first one.
"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, sender = sock.recvfrom(65507)
    if not data:  # the mistake: TCP thinking
        print("client closed", file=sys.stderr)
        break
    sock.sendto(data, sender)
sock.close()
