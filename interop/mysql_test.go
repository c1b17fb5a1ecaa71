package interop_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// mysqlFormat is the MySQL client/server packet: length u24 LE, sequence
// id, payload. A frame is the sequence id followed by the payload.
var mysqlFormat = framed.Format{HeaderSize: 3, LengthAdjust: 1}

// mysqlGreeting is a Handshake V10 packet's payload offering
// mysql_native_password with the 4.1 protocol.
func mysqlGreeting() []byte {
	const caps = 1 | 0x200 | 0x2000 | 0x8000 | 0x80000 // LONG_PASSWORD, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH
	b := []byte{10}
	b = append(b, "8.0.0-framed\x00"...)
	b = binary.LittleEndian.AppendUint32(b, 1) // connection id
	b = append(b, "abcdefgh"...)               // auth data, part 1
	b = append(b, 0)                           // filler
	b = binary.LittleEndian.AppendUint16(b, caps&0xffff)
	b = append(b, 0x21)                        // utf8_general_ci
	b = binary.LittleEndian.AppendUint16(b, 2) // SERVER_STATUS_AUTOCOMMIT
	b = binary.LittleEndian.AppendUint16(b, caps>>16)
	b = append(b, 21)                    // auth data length
	b = append(b, make([]byte, 10)...)   // reserved
	b = append(b, "ijklmnopqrst\x00"...) // auth data, part 2
	return append(b, "mysql_native_password\x00"...)
}

// mysqlOK is an OK packet's payload.
var mysqlOK = []byte{0, 0, 0, 2, 0, 0, 0}

// TestMySQLDriver has go-sql-driver/mysql talk to a server that frames
// MySQL packets with framed: the greeting, the driver's handshake
// response, a COM_PING, a COM_QUERY and a COM_QUIT, with their sequence
// ids, each in and out through mysqlFormat.
func TestMySQLDriver(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	type packet struct {
		seq     byte
		payload []byte
	}
	got := make(chan packet, 16)
	served := make(chan error, 1)
	var raw bytes.Buffer // what the driver sent, read only after served
	go func() {
		defer close(got)
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(peerTimeout))
		r, w := framed.NewReader(io.TeeReader(nc, &raw), mysqlFormat), framed.NewWriter(nc, mysqlFormat)
		send := func(seq byte, payload []byte) error {
			if err := w.WriteFrame(append([]byte{seq}, payload...)); err != nil {
				return err
			}
			return w.Flush()
		}
		if err := send(0, mysqlGreeting()); err != nil {
			served <- err
			return
		}
		for {
			p, err := r.ReadFrame()
			if err != nil {
				served <- fmt.Errorf("ReadFrame: %w", err)
				return
			}
			got <- packet{seq: p[0], payload: bytes.Clone(p[1:])}
			if len(p) > 1 && p[1] == 0x01 && p[0] == 0 { // COM_QUIT
				served <- nil
				return
			}
			if err := send(p[0]+1, mysqlOK); err != nil {
				served <- err
				return
			}
		}
	}()

	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "framed", "tcp", ln.Addr().String(), ""
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = peerTimeout, peerTimeout, peerTimeout
	connector, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	require.NoError(t, err, "the driver's handshake")
	require.NoError(t, conn.PingContext(ctx), "COM_PING")
	_, err = conn.ExecContext(ctx, "DO 1")
	require.NoError(t, err, "COM_QUERY")
	require.NoError(t, conn.Close(), "back to the pool")
	require.NoError(t, db.Close(), "COM_QUIT")
	require.NoError(t, <-served)

	var packets []packet
	for p := range got {
		packets = append(packets, p)
	}
	require.Len(t, packets, 4, "handshake response, ping, query, quit")
	assert.Equal(t, byte(1), packets[0].seq, "the handshake response follows the greeting")
	assert.True(t, bytes.Contains(packets[0].payload, []byte("framed\x00")), "the handshake response names the user")
	assert.Equal(t, packet{seq: 0, payload: []byte{0x0e}}, packets[1], "COM_PING")
	assert.Equal(t, packet{seq: 0, payload: []byte("\x03DO 1")}, packets[2], "COM_QUERY")
	assert.Equal(t, packet{seq: 0, payload: []byte{0x01}}, packets[3], "COM_QUIT")

	// The driver's COM_QUIT, byte for byte, is golden.txt's.
	for _, c := range goldenFrames(t, "mysql") {
		if bytes.Equal(c.frame, []byte{0, 1}) {
			assert.True(t, bytes.HasSuffix(raw.Bytes(), c.wire), "golden.txt:%d: the driver's COM_QUIT", c.line)
		}
	}
}
