"""Broken twin: a UDP echo server that sends its replies to its own address.

The mistake of passing the server's address (serv_adr) to sendto() instead of the
address recvfrom() filled in (clnt_adr): every reply goes back into its own socket.
"""
import socket
import sys

port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
while True:
    data, sender = sock.recvfrom(65507)
    if sender == ("127.0.0.1", port):
        continue  # one of its own misdirected replies
    sock.sendto(data, ("127.0.0.1", port))  # the mistake: should be `sender`
