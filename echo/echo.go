// Package echo defines what every echo server in this project is: the Server
// life cycle (modelled on net/http.Server), the two protocols of SPEC.md and
// the prefix template. It holds the contract only: the reference servers'
// connection code is in internal/serveconn and impl/internal/handler.
package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("echo: server closed")

// Server is the interface every implementation satisfies, ours or a user's.
//
// Serve accepts connections on ln until Shutdown or Close and then returns
// ErrServerClosed. Shutdown stops accepting at once, lets in-flight
// connections finish, and returns when every resource the server holds
// (goroutines, descriptors, child processes) is released, or with ctx.Err()
// when ctx ends first.
type Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Protocol is one of the echo protocols of SPEC.md.
type Protocol int

const (
	// Stream is RFC 862: every byte comes back as it arrives; a half-close
	// from the client ends the connection.
	Stream Protocol = iota
	// Oneshot is the seed's handler: one message, one reply, close.
	Oneshot
	// Line is line echo (CS:APP's echo, Java's readLine/println): each
	// line comes back whole once its newline arrives; a half-close from
	// the client ends the connection.
	Line
)

// Protocols are the protocols of SPEC.md, in the order of its sections.
var Protocols = []Protocol{Stream, Oneshot, Line}

func (p Protocol) String() string {
	switch p {
	case Stream:
		return "stream"
	case Oneshot:
		return "oneshot"
	case Line:
		return "line"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// ParseProtocol parses "stream", "oneshot" or "line".
func ParseProtocol(s string) (Protocol, error) {
	for _, p := range Protocols {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q (want stream, oneshot or line)", s)
}

// Defaults of SPEC.md for the oneshot protocol.
const (
	DefaultMaxMsg = 1024
	// DefaultQuiet is how long a oneshot server waits for more of a message
	// after the last bytes arrived. It must exceed the pauses of SPEC.md
	// ONESHOT-4 (20 ms) and stay well below the reply deadline of ONESHOT-1.
	DefaultQuiet = 100 * time.Millisecond
)

// DefaultMaxLine is the longest line (its newline included) a line server
// echoes whole unless it declares otherwise (SPEC.md LINE-5).
const DefaultMaxLine = 8192

// Config is what an echo server speaks.
type Config struct {
	Protocol Protocol
	Prefix   Template      // written once per connection before the echoed data
	MaxMsg   int           // oneshot: largest message; 0 means DefaultMaxMsg
	Quiet    time.Duration // oneshot: end of message after this much silence; 0 means DefaultQuiet
	MaxLine  int           // line: longest line echoed whole, newline included; 0 means DefaultMaxLine
}

// WithDefaults returns c with every zero limit set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxMsg <= 0 {
		c.MaxMsg = DefaultMaxMsg
	}
	if c.Quiet <= 0 {
		c.Quiet = DefaultQuiet
	}
	if c.MaxLine <= 0 {
		c.MaxLine = DefaultMaxLine
	}
	return c
}
