#!/usr/bin/env node
// echo_server.js -- an echo server in Node.js for ch12 (one process, one
// thread, an event loop: Node's equivalent of the select() server).
// socket.pipe(socket) echoes and handles backpressure: when the client stops
// reading and the write buffer is full, Node pauses reading from that socket
// until 'drain'. Errors (ECONNRESET, EPIPE) end only that client.
'use strict';
const net = require('net');

if (process.argv.length !== 3) {
  console.log(`Usage : ${process.argv[1]} <port>`);
  process.exit(1);
}
const port = Number(process.argv[2]);

const server = net.createServer((sock) => {
  sock.on('error', () => sock.destroy());   // a reset client: drop it, nothing else
  sock.pipe(sock);                          // echo, with backpressure
});
server.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exit(1);
});
server.listen(port, () => console.log(`echo server listening on port ${port}`));

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
