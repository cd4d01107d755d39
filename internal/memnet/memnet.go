// Package memnet is an in-memory network for tests: a net.Listener whose
// connections are net.Pipe pairs, so that real HTTP servers and clients
// can run inside a testing/synctest bubble (a loopback socket would hang
// it), without pulling a transport's test package into the module.
package memnet

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrClosed is returned by Accept and Dial once the listener is closed.
var ErrClosed = errors.New("memnet: listener closed")

// A Listener is an in-memory net.Listener; Dial connects to it. It is safe
// for concurrent use by multiple goroutines.
type Listener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// Listen returns a new Listener.
func Listen() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next connection, or for Close.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close closes the listener: Accept and Dial return ErrClosed. Connections
// already made stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return addr{} }

// Dial connects to the listener, waiting until it accepts, ctx ends or
// the listener is closed. Its signature is that of
// http.Transport.DialContext.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-ctx.Done():
		err := ctx.Err()
		client.Close()
		server.Close()
		return nil, err
	case <-l.done:
		client.Close()
		server.Close()
		return nil, ErrClosed
	}
}

type addr struct{}

func (addr) Network() string { return "memnet" }
func (addr) String() string  { return "memnet" }
