package framedtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/framed-go/framed"
)

// Server is a framed server on a loopback port (or a [Listener]), for
// tests, shaped after net/http/httptest's Server:
//
//	srv := framedtest.NewServer(handler)
//	defer srv.Close()
//	client, err := srv.Dial(ctx)
//
// NewFormatServer starts one that speaks another [framed.Format].
// NewUnstartedServer leaves time to adjust Config (its limits and
// timeouts), to replace Listener, for example with a [Listener] in memory,
// or to set TLS, before Start or StartTLS.
type Server struct {
	// Addr is the address to dial, "127.0.0.1:port" for a loopback
	// listener, set by Start and StartTLS.
	Addr string

	// Listener is what the Server serves. NewUnstartedServer sets it to a
	// TCP listener on a free loopback port; it may be replaced before
	// Start, which then closes the one it made.
	Listener net.Listener

	// Config is the server that serves Listener. It may be changed before
	// Start, not after.
	Config *framed.Server

	// TLS is the server's TLS configuration, set by StartTLS. It may be set
	// before StartTLS; StartTLS then adds its certificate when it has none.
	TLS *tls.Config

	cert   *x509.Certificate
	own    net.Listener // the listener NewUnstartedServer made
	wg     sync.WaitGroup
	mu     sync.Mutex
	state  int // 0 new, 1 started, 2 closed
	served error
}

// NewServer starts and returns a Server that serves h (nil means
// [framed.EchoHandler]). The caller should call Close when done.
func NewServer(h framed.Handler) *Server {
	s := NewUnstartedServer(h)
	s.Start()
	return s
}

// NewFormatServer starts and returns a Server that serves h (nil means
// [framed.EchoHandler]) in the wire format f: f is its Config.Format, and
// Dial speaks it too. A Script for it is [NewFormatScript](f). An invalid
// f stops the server at once, and Dial's error then says why. The caller
// should call Close when done.
func NewFormatServer(f framed.Format, h framed.Handler) *Server {
	s := NewUnstartedServer(h)
	s.Config.Format = f
	s.Start()
	return s
}

// NewUnstartedServer returns a Server that serves h (nil means
// [framed.EchoHandler]) once Start or StartTLS is called. It listens on a
// free port of 127.0.0.1, or of [::1] when there is no IPv4 loopback, and
// panics when it can listen on neither, as httptest does.
func NewUnstartedServer(h framed.Handler) *Server {
	ln := newLocalListener()
	return &Server{Listener: ln, Config: &framed.Server{Handler: h}, own: ln}
}

func newLocalListener() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		return ln
	}
	ln, err6 := net.Listen("tcp", "[::1]:0")
	if err6 == nil {
		return ln
	}
	panic(fmt.Sprintf("framedtest: failed to listen on a port: %v; %v", err, err6))
}

// Start starts serving. It panics if the Server was already started or
// closed.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != 0 {
		panic("framedtest: Server already started")
	}
	s.state = 1
	if s.own != nil && s.Listener != s.own {
		s.own.Close()
	}
	s.Addr = s.Listener.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.Config.Serve(s.Listener)
		if !errors.Is(err, framed.ErrServerClosed) {
			s.mu.Lock()
			s.served = err
			s.mu.Unlock()
		}
	}()
}

// StartTLS starts serving over TLS, with a certificate for 127.0.0.1, ::1
// and localhost made for this Server, unless s.TLS already holds one.
// Dial, DialConn and Certificate trust it.
func (s *Server) StartTLS() {
	if s.TLS == nil {
		s.TLS = &tls.Config{}
	}
	if len(s.TLS.Certificates) == 0 && s.TLS.GetCertificate == nil {
		cert, leaf, err := newCertificate()
		if err != nil {
			panic("framedtest: " + err.Error())
		}
		s.TLS.Certificates = []tls.Certificate{cert}
		s.cert = leaf
	} else if len(s.TLS.Certificates) > 0 {
		s.cert = s.TLS.Certificates[0].Leaf
		if s.cert == nil {
			s.cert, _ = x509.ParseCertificate(s.TLS.Certificates[0].Certificate[0])
		}
	}
	s.Config.TLSConfig = s.TLS
	s.Start()
}

// Certificate returns the certificate the Server presents after StartTLS,
// or nil.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// clientTLS returns a client configuration that trusts the Server's
// certificate, or nil without TLS.
func (s *Server) clientTLS() *tls.Config {
	if s.TLS == nil {
		return nil
	}
	pool := x509.NewCertPool()
	if s.cert != nil {
		pool.AddCert(s.cert)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// DialConn connects to the Server and returns the connection unframed:
// over TLS after StartTLS, in memory when Listener is a [*Listener]. It is
// what a [Script] or a hand-written peer runs on.
func (s *Server) DialConn(ctx context.Context) (net.Conn, error) {
	var (
		c   net.Conn
		err error
	)
	if ml, ok := s.Listener.(*Listener); ok {
		c, err = ml.DialContext(ctx)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", s.Addr)
	}
	if err != nil {
		return nil, s.explain(err)
	}
	if cfg := s.clientTLS(); cfg != nil {
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, s.explain(err)
		}
		c = tc
	}
	return c, nil
}

// Dial connects a Client to the Server, with the Server's Format, over TLS
// after StartTLS, in memory when Listener is a [*Listener].
func (s *Server) Dial(ctx context.Context) (*framed.Client, error) {
	c, err := s.DialConn(ctx)
	if err != nil {
		return nil, err
	}
	return framed.NewClient(framed.NewConn(c, framed.ConnConfig{Format: s.Config.Format})), nil
}

// explain adds to a dial error why the Server stopped serving, if it did:
// Serve refuses invalid fields in Config, for one.
func (s *Server) explain(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served != nil {
		return fmt.Errorf("%w (the server stopped: %v)", err, s.served)
	}
	return err
}

// Close closes the listener and every connection, and waits until every
// handler has returned and Serve is done. It may be called more than once,
// but not from a handler of the Server, which it would wait for.
func (s *Server) Close() {
	s.mu.Lock()
	state := s.state
	s.state = 2
	s.mu.Unlock()
	if state == 0 {
		s.Listener.Close()
		if s.own != nil {
			s.own.Close()
		}
	}
	s.Config.Close()
	// Close does not wait for running handlers; Shutdown, after it, does.
	s.Config.Shutdown(context.Background())
	s.wg.Wait()
}

// newCertificate returns a self-signed certificate for 127.0.0.1, ::1 and
// localhost, valid for a day.
func newCertificate() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"framedtest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
