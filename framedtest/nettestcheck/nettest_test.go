// Package nettestcheck holds framedtest's connections to the contract of
// golang.org/x/net/nettest.TestConn. It is a module of its own so that
// golang.org/x/net stays out of framed's dependencies; run it with
// "cd framedtest/nettestcheck && go test -race ./...".
package nettestcheck

import (
	"net"
	"testing"

	"github.com/framed-go/framed/framedtest"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func memPipe() (c1, c2 net.Conn, stop func(), err error) {
	ln := framedtest.NewListener(0)
	c1, err = ln.Dial()
	if err != nil {
		return nil, nil, nil, err
	}
	c2, err = ln.Accept()
	if err != nil {
		return nil, nil, nil, err
	}
	return c1, c2, func() { c1.Close(); c2.Close(); ln.Close() }, nil
}

func TestListenerConn(t *testing.T) {
	nettest.TestConn(t, memPipe)
}

func TestFaultConn(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		a, b, stop, err := memPipe()
		if err != nil {
			return nil, nil, nil, err
		}
		fc := framedtest.WrapConn(a)
		return fc, b, func() { fc.Close(); stop() }, nil
	})
}
