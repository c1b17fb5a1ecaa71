package framed_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnCloseOverTLS checks the promise that Close unblocks ReadFrame
// with an error matching net.ErrClosed over TLS too, not only over TCP and
// net.Pipe, and that frames cross a TLS connection intact.
func TestConnCloseOverTLS(t *testing.T) {
	serverTLS, clientTLS := testTLSConfigs(t)
	clientTLS = clientTLS.Clone()
	clientTLS.ServerName = "127.0.0.1" // tls.Client does not take it from an address
	a, b := tcpPair(t)
	ta, tb := tls.Client(a, clientTLS), tls.Server(b, serverTLS)
	ca, cb := framed.NewConn(ta, framed.ConnConfig{}), framed.NewConn(tb, framed.ConnConfig{})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	require.NoError(t, ca.SetDeadline(time.Now().Add(testTimeout)))
	require.NoError(t, cb.SetDeadline(time.Now().Add(testTimeout)))

	// The handshake runs on the first write and read.
	written := make(chan error, 1)
	go func() { written <- ca.WriteFrame([]byte("over tls")) }()
	got, err := cb.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "over tls", string(got))
	require.NoError(t, <-written)

	read := make(chan error, 1)
	go func() {
		_, err := cb.ReadFrame()
		read <- err
	}()
	time.Sleep(10 * time.Millisecond) // let ReadFrame block; the result is the same if it has not yet
	require.NoError(t, cb.Close())
	select {
	case err := <-read:
		assert.ErrorIs(t, err, net.ErrClosed, "ReadFrame after Close over TLS")
	case <-time.After(testTimeout):
		t.Fatal("Close did not unblock ReadFrame over TLS")
	}
	assert.ErrorIs(t, cb.WriteFrame([]byte("late")), net.ErrClosed, "WriteFrame after Close over TLS")
}
