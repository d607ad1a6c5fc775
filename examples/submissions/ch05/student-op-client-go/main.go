// op_client in Go, after the book's ch05 op_client.c: same prompts, same
// bytes (count, little-endian int32 operands, operator), 4-byte result.
// This member prints the result as "Operation result : %d" (space before the colon).
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

func fail(msg string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", msg, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Printf("Usage : %s <IP> <port>\n", os.Args[0])
		os.Exit(1)
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(os.Args[1], os.Args[2]))
	if err != nil {
		fail("connect() error", err)
	}
	defer conn.Close()
	fmt.Println("Connected...........")

	in := bufio.NewReader(os.Stdin)
	readWord := func() string {
		for {
			line, err := in.ReadString('\n')
			line = strings.TrimSpace(line)
			if line != "" {
				return line
			}
			if err != nil {
				fail("end of input", err)
			}
		}
	}

	fmt.Print("Operand count: ")
	cnt, err := strconv.Atoi(readWord())
	if err != nil || cnt < 1 || cnt > 100 {
		fail("bad operand count", err)
	}
	msg := make([]byte, 0, 1+4*cnt+1)
	msg = append(msg, byte(cnt))
	for i := 0; i < cnt; i++ {
		fmt.Printf("Operand %d: ", i+1)
		v, err := strconv.ParseInt(readWord(), 10, 32)
		if err != nil {
			fail("bad operand", err)
		}
		msg = binary.LittleEndian.AppendUint32(msg, uint32(int32(v)))
	}
	fmt.Print("Operator: ")
	op := readWord()
	msg = append(msg, op[0])

	if _, err := conn.Write(msg); err != nil {
		fail("write() error", err)
	}
	var res [4]byte
	if _, err := io.ReadFull(conn, res[:]); err != nil {
		fail("read() error", err)
	}
	fmt.Printf("Operation result : %d\n", int32(binary.LittleEndian.Uint32(res[:])))
}
