package framedtest_test

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func request(t *testing.T, srv *framedtest.Server, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := srv.Dial(ctx)
	require.NoError(t, err)
	defer client.Close()
	got, err := client.Request(ctx, []byte(msg))
	require.NoError(t, err)
	return string(got)
}

func TestNewServerServesItsHandler(t *testing.T) {
	srv := framedtest.NewServer(framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrame(append([]byte("re: "), frame...))
	}))
	assert.Regexp(t, `^(127\.0\.0\.1|\[::1\]):[1-9][0-9]*$`, srv.Addr)
	assert.Equal(t, "re: hi", request(t, srv, "hi"))
	srv.Close()
	srv.Close() // a second Close does nothing

	_, err := srv.Dial(context.Background())
	assert.Error(t, err, "dial after Close")
}

func TestNewServerNilHandlerEchoes(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	assert.Equal(t, "echo", request(t, srv, "echo"))
}

// TestUnstartedServerConfig changes the Format before Start and checks the
// bytes on the wire follow it, and that Dial uses it.
func TestUnstartedServerConfig(t *testing.T) {
	srv := framedtest.NewUnstartedServer(nil)
	srv.Config.Format = framed.Format{HeaderSize: 2, BigEndian: true}
	srv.Start()
	defer srv.Close()

	assert.Equal(t, "big", request(t, srv, "big"))
	framedtest.NewScript().
		SendRaw([]byte{0, 2, 'h', 'i'}).
		ExpectRaw([]byte{0, 2, 'h', 'i'}).
		RunAddr(t, srv.Addr)

	assert.Panics(t, srv.Start, "a second Start")
}

func TestStartTLS(t *testing.T) {
	srv := framedtest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	require.NotNil(t, srv.Certificate())
	assert.Equal(t, "secret", request(t, srv, "secret"))

	c, err := srv.DialConn(context.Background())
	require.NoError(t, err)
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	require.True(t, ok, "DialConn gives a TLS connection, not %T", c)
	assert.True(t, tc.ConnectionState().HandshakeComplete)
	framedtest.NewScript().Send([]byte("x")).Expect([]byte("x")).Run(t, c)

	// Plain bytes to a TLS server get no echo: the server reads them as
	// a broken handshake and closes.
	framedtest.NewScript().Send([]byte("plain")).ExpectClosed(5*time.Second).RunAddr(t, srv.Addr)
}

func TestServerInMemory(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		srv := framedtest.NewUnstartedServer(nil)
		loopback := srv.Listener.Addr().String()
		srv.Listener = framedtest.NewListener(0)
		if useTLS {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		assert.Equal(t, "framedtest", srv.Addr)
		assert.Equal(t, "memory", request(t, srv, "memory"), "TLS %v", useTLS)
		_, err := net.DialTimeout("tcp", loopback, time.Second)
		assert.Error(t, err, "Start closed the loopback listener it replaced")
		srv.Close()
	}
}

// TestCloseWaitsForHandlers checks Close returns only after a handler that
// blocks until its ctx ends has returned.
func TestCloseWaitsForHandlers(t *testing.T) {
	entered := make(chan struct{})
	var returned atomic.Bool
	srv := framedtest.NewServer(framed.HandlerFunc(func(ctx context.Context, _ *framed.Conn, _ []byte) error {
		close(entered)
		<-ctx.Done()
		returned.Store(true)
		return ctx.Err()
	}))
	client, err := srv.Dial(context.Background())
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, client.Send(t.Context(), []byte("block")))
	<-entered
	srv.Close()
	assert.True(t, returned.Load(), "the handler returned before Close did")
}

func TestCloseUnstartedServer(t *testing.T) {
	srv := framedtest.NewUnstartedServer(nil)
	addr := srv.Listener.Addr().String()
	srv.Close()
	_, err := (&framed.Dialer{Timeout: time.Second}).Dial(context.Background(), addr)
	assert.Error(t, err)
}

// TestNewFormatServer: one call makes a server of another Format, whose
// Dial speaks it, and NewFormatScript and NewFormatProxy speak it too.
func TestNewFormatServer(t *testing.T) {
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	srv := framedtest.NewFormatServer(zinx, nil)
	defer srv.Close()
	assert.Equal(t, zinx, srv.Config.Format)
	assert.Equal(t, "\x00\x00\x00\x01ping", request(t, srv, "\x00\x00\x00\x01ping"))

	framedtest.NewFormatScript(zinx).
		Send([]byte("\x00\x00\x00\x07hi")).
		ExpectRaw([]byte{0, 0, 0, 7, 0, 0, 0, 2, 'h', 'i'}). // msgID, length, data
		Send([]byte("\x00\x00\x00\x08")).
		Expect([]byte("\x00\x00\x00\x08")).
		RunAddr(t, srv.Addr)

	proxy := framedtest.NewFormatProxy(zinx, srv.Addr)
	defer proxy.Close()
	proxy.Up.Slice(1)
	client, err := proxy.Dial(t.Context())
	require.NoError(t, err)
	defer client.Close()
	got, err := client.Request(t.Context(), []byte("\x00\x00\x00\x09through"))
	require.NoError(t, err)
	assert.Equal(t, "\x00\x00\x00\x09through", string(got))
}

// TestNewFormatServerInvalidFormat: Serve refuses the Format, and Dial
// says why.
func TestNewFormatServerInvalidFormat(t *testing.T) {
	srv := framedtest.NewFormatServer(framed.Format{HeaderSize: 5}, nil)
	srv.Close() // waits for Serve to return
	_, err := srv.Dial(t.Context())
	assert.ErrorContains(t, err, "the server stopped")
	assert.ErrorContains(t, err, "HeaderSize 5")
}
