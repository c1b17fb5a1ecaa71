package interop_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/framed-go/framed"
)

// http2Format is the HTTP/2 frame header (RFC 9113 section 4.1): length u24
// BE, then type, flags and stream ID (6 bytes the length does not count).
// A frame is type, flags, stream ID and payload. MaxFrameSize is
// SETTINGS_MAX_FRAME_SIZE's default, 16384, plus those 6 bytes.
var http2Format = framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16384 + 6}

// grpcFormat is gRPC's length-prefixed message: compressed flag u8, length
// u32 BE, message. A frame is the flag followed by the message.
var grpcFormat = framed.Format{LengthOffset: 1, BigEndian: true}

// tlsFormat is the TLS record layer (RFC 8446 section 5.1): type u8,
// legacy version u16, length u16 BE, fragment. A frame is type, version
// and fragment; a record's fragment is at most 2^14+256 bytes.
var tlsFormat = framed.Format{LengthOffset: 3, HeaderSize: 2, BigEndian: true, MaxFrameSize: 3 + 1<<14 + 256}

// grpcMessage writes a gRPC length-prefixed message as the gRPC over HTTP/2
// protocol document specifies it, independently of framed: the
// Compressed-Flag byte, the Message-Length as a 4-byte big-endian
// unsigned integer, and the message.
func grpcMessage(compressed bool, msg []byte) []byte {
	flag := byte(0)
	if compressed {
		flag = 1
	}
	b := []byte{flag}
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// h2Frame is what a framed frame of http2Format holds.
type h2Frame struct {
	typ     http2.FrameType
	flags   http2.Flags
	stream  uint32
	payload []byte
}

func (f h2Frame) bytes() []byte {
	b := []byte{byte(f.typ), byte(f.flags)}
	b = binary.BigEndian.AppendUint32(b, f.stream)
	return append(b, f.payload...)
}

// TestHTTP2Framer decodes frames written by golang.org/x/net/http2's
// Framer, re-encodes them byte for byte, and has the Framer read back what
// framed writes, including a gRPC message carried in DATA frames.
func TestHTTP2Framer(t *testing.T) {
	hello := grpcMessage(false, []byte("\x0a\x05hello")) // a protobuf string field, gRPC-framed
	frames := []h2Frame{
		{typ: http2.FrameSettings},
		{typ: http2.FrameSettings, payload: []byte{0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0}},
		{typ: http2.FrameSettings, flags: http2.FlagSettingsAck},
		{typ: http2.FramePing, payload: []byte("12345678")},
		{typ: http2.FrameData, stream: 1, payload: hello[:3]},
		{typ: http2.FrameData, flags: http2.FlagDataEndStream, stream: 1, payload: hello[3:]},
		{typ: http2.FrameWindowUpdate, stream: 1, payload: []byte{0, 0, 0x10, 0}},
		{typ: http2.FrameData, stream: 3, payload: bytes.Repeat([]byte{'x'}, 16384)},
		{typ: http2.FrameGoAway, payload: []byte{0, 0, 0, 3, 0, 0, 0, 0}},
	}

	// The Framer writes; framed reads.
	var h2 bytes.Buffer
	fr := http2.NewFramer(&h2, nil)
	for _, f := range frames {
		switch f.typ {
		case http2.FrameSettings:
			if f.flags.Has(http2.FlagSettingsAck) {
				require.NoError(t, fr.WriteSettingsAck())
				continue
			}
			var settings []http2.Setting
			for p := f.payload; len(p) >= 6; p = p[6:] {
				settings = append(settings, http2.Setting{ID: http2.SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])})
			}
			require.NoError(t, fr.WriteSettings(settings...))
		case http2.FramePing:
			require.NoError(t, fr.WritePing(false, [8]byte(f.payload)))
		case http2.FrameData:
			require.NoError(t, fr.WriteData(f.stream, f.flags.Has(http2.FlagDataEndStream), f.payload))
		case http2.FrameWindowUpdate:
			require.NoError(t, fr.WriteWindowUpdate(f.stream, binary.BigEndian.Uint32(f.payload)))
		case http2.FrameGoAway:
			require.NoError(t, fr.WriteGoAway(binary.BigEndian.Uint32(f.payload), http2.ErrCodeNo, nil))
		}
	}
	written := bytes.Clone(h2.Bytes())
	r := framed.NewReader(bytes.NewReader(written), http2Format)
	var grpcStream []byte
	for i, f := range frames {
		got, err := r.ReadFrame()
		require.NoError(t, err, "frame %d (%v)", i, f.typ)
		assert.Equal(t, f.bytes(), got, "frame %d (%v): type, flags, stream and payload", i, f.typ)
		if f.typ == http2.FrameData && f.stream == 1 {
			grpcStream = append(grpcStream, got[6:]...)
		}
	}
	_, err := r.ReadFrame()
	assert.Equal(t, io.EOF, err, "after the Framer's frames")

	// The gRPC message the DATA frames of stream 1 carry, split across two.
	msg, err := grpcFormat.Decode(bufio.NewReader(bytes.NewReader(grpcStream)))
	require.NoError(t, err, "the gRPC message in stream 1")
	assert.Equal(t, []byte("\x00\x0a\x05hello"), msg, "flag and message")

	// framed writes the same bytes, and the Framer reads them back.
	var out bytes.Buffer
	w := framed.NewWriter(&out, http2Format)
	for _, f := range frames {
		require.NoError(t, w.WriteFrame(f.bytes()))
	}
	require.NoError(t, w.Flush())
	assert.Equal(t, written, out.Bytes(), "framed's bytes are the Framer's")
	back := http2.NewFramer(nil, &out)
	for i, f := range frames {
		got, err := back.ReadFrame()
		require.NoError(t, err, "the Framer reads framed's frame %d", i)
		h := got.Header()
		assert.Equal(t, f.typ, h.Type, "frame %d type", i)
		assert.Equal(t, f.stream, h.StreamID, "frame %d stream", i)
		assert.Equal(t, uint32(len(f.payload)), h.Length, "frame %d length", i)
	}
}

// TestHTTP2Golden checks the http2 vectors of testdata/golden.txt against
// bytes the Framer writes.
func TestHTTP2Golden(t *testing.T) {
	for _, c := range goldenFrames(t, "http2") {
		var b bytes.Buffer
		fr := http2.NewFramer(&b, nil)
		fr.AllowIllegalWrites = true // a PING's stream is checked, not its form here
		require.NoError(t, fr.WriteRawFrame(http2.FrameType(c.frame[0]), http2.Flags(c.frame[1]),
			binary.BigEndian.Uint32(c.frame[2:6]), c.frame[6:]))
		assert.Equal(t, c.wire, b.Bytes(), "golden.txt:%d: the Framer's frame", c.line)
	}
}

// TestGRPCGolden checks framed's gRPC layout and the grpc vectors of
// testdata/golden.txt against messages written from the gRPC spec.
func TestGRPCGolden(t *testing.T) {
	for _, c := range goldenFrames(t, "grpc") {
		want := grpcMessage(c.frame[0] == 1, c.frame[1:])
		assert.Equal(t, want, c.wire, "golden.txt:%d: the spec's bytes", c.line)
		got, err := grpcFormat.Encode(c.frame)
		require.NoError(t, err)
		assert.Equal(t, want, got, "golden.txt:%d: framed's bytes", c.line)
	}
}

// TestTLSRecords decodes the records crypto/tls writes for a whole
// handshake and some application data, and re-encodes them byte for byte.
func TestTLSRecords(t *testing.T) {
	cert := selfSigned(t)
	clientSide, serverSide := net.Pipe()
	var raw bytes.Buffer // what the client wrote, as it went on the wire
	tap := &tapConn{Conn: clientSide, w: &raw}
	client := tls.Client(tap, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}) //nolint:gosec // a self-signed test peer
	server := tls.Server(serverSide, &tls.Config{Certificates: []tls.Certificate{cert}})
	deadline := time.Now().Add(peerTimeout)
	require.NoError(t, clientSide.SetDeadline(deadline))
	require.NoError(t, serverSide.SetDeadline(deadline))

	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		buf := make([]byte, 64)
		n, err := io.ReadFull(server, buf[:5])
		if err == nil && string(buf[:n]) != "hello" {
			err = io.ErrUnexpectedEOF
		}
		errc <- err
		_, _ = io.Copy(io.Discard, server) // up to the client's close_notify
	}()
	_, err := client.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, <-errc, "the server reads the application data")
	require.NoError(t, client.Close())
	<-done

	stream := raw.Bytes()
	r := framed.NewReader(bytes.NewReader(stream), tlsFormat)
	var types []byte
	var again []byte
	for {
		rec, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "record %d", len(types))
		types = append(types, rec[0])
		assert.Equal(t, byte(3), rec[1], "record %d: a TLS version (3.1 in a ClientHello, else 3.3)", len(types))
		again, err = tlsFormat.AppendFrame(again, rec)
		require.NoError(t, err)
	}
	// ClientHello; ClientKeyExchange; ChangeCipherSpec; Finished;
	// application data; close_notify alert.
	assert.Equal(t, []byte{22, 22, 20, 22, 23, 21}, types, "record types the client wrote")
	assert.Equal(t, stream, again, "framed re-encodes crypto/tls's records byte for byte")
}

// tapConn copies what is written through it to w.
type tapConn struct {
	net.Conn
	w *bytes.Buffer
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.w.Write(p)
	return c.Conn.Write(p)
}
