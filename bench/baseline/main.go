// Command baseline is the yardstick of `make bench`: the minimal Go echo
// server, a goroutine per connection running io.Copy (which splices
// socket to socket), then a half-close. No prefix, no bookkeeping, no
// shutdown: what the references are measured against.
//
//	baseline -addr 127.0.0.1:7007
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7007", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
		os.Exit(2)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			if _, err := io.Copy(c, c); err == nil {
				_ = c.(*net.TCPConn).CloseWrite()
			}
		}()
	}
}
