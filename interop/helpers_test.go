package interop_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// listen returns a loopback listener; the Server that serves it closes it.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// serve runs s on ln; cleanup closes it and checks how Serve returned.
func serve(t *testing.T, s *framed.Server, ln net.Listener) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, s.Close())
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, framed.ErrServerClosed)
		case <-time.After(peerTimeout):
			t.Error("Serve did not return")
		}
	})
}

// goldenFrame is one "frame" line of ../testdata/golden.txt.
type goldenFrame struct {
	line        int
	frame, wire []byte
}

// goldenFrames returns the frame cases of ../testdata/golden.txt for the
// named layout.
func goldenFrames(t *testing.T, name string) []goldenFrame {
	t.Helper()
	data, err := os.ReadFile("../testdata/golden.txt")
	require.NoError(t, err)
	var out []goldenFrame
	for i, text := range strings.Split(string(data), "\n") {
		text, _, _ = strings.Cut(text, "#")
		fields := strings.Fields(text)
		if len(fields) != 4 || fields[0] != "frame" || fields[1] != name {
			continue
		}
		frame, err := goldenBytes(fields[2])
		require.NoError(t, err, "golden.txt:%d", i+1)
		wire, err := goldenBytes(fields[3])
		require.NoError(t, err, "golden.txt:%d", i+1)
		out = append(out, goldenFrame{line: i + 1, frame: frame, wire: wire})
	}
	require.NotEmpty(t, out, "golden.txt has frames for %s", name)
	return out
}

// goldenBytes reads golden.txt's "-" or "+"-joined hex and "HH*N" runs.
func goldenBytes(s string) ([]byte, error) {
	b := []byte{}
	if s == "-" {
		return b, nil
	}
	for piece := range strings.SplitSeq(s, "+") {
		hexPart, count, isRun := strings.Cut(piece, "*")
		v, err := hex.DecodeString(hexPart)
		if err != nil {
			return nil, err
		}
		if isRun {
			n, err := strconv.Atoi(count)
			if err != nil || len(v) != 1 {
				return nil, errors.New("bad run " + piece)
			}
			v = bytes.Repeat(v, n)
		}
		b = append(b, v...)
	}
	return b, nil
}

// selfSigned returns a certificate for a TLS test server.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
