// echo_thrserv in Go: the book's ch18 echo_thrserv.c (a thread per client)
// done with a goroutine per client. Each goroutine reads and writes with
// plain blocking-style calls; the Go runtime multiplexes them with epoll.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func handleClient(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil { // Write writes all or fails
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(os.Stderr, "client %v: %v\n", conn.RemoteAddr(), err)
			}
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Printf("Usage : %s <port>\n", os.Args[0])
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", ":"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen() error:", err)
		os.Exit(1)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept() error:", err)
			continue
		}
		fmt.Printf("Connected client IP: %v\n", conn.RemoteAddr())
		go handleClient(conn)
	}
}
