package main

import (
	"bufio"
	"io"
	"net"
	"time"
)

// rawBufSize is the bufio size of the raw server and client.
const rawBufSize = 64 << 10

// rawImpl is a well-written stdlib loop: a goroutine per connection, a
// 64 KiB bufio.Reader and bufio.Writer, io.ReadFull of the header and then
// of the payload into a reused buffer, replies flushed when the input has
// drained (Buffered() == 0). Same wire format as framed.
func rawImpl() Impl {
	return Impl{
		Name:  "raw",
		Key:   "raw",
		Note:  "stdlib: bufio 64 KiB, io.ReadFull into a reused buffer, flush when input drains",
		Serve: serveRaw,
		Dial:  dialRaw,
	}
}

func serveRaw(cfg ServerConfig) (Server, error) {
	size := cfg.BufSize
	if size <= 0 {
		size = rawBufSize
	}
	return startConnServer(func(nc net.Conn) {
		br := bufio.NewReaderSize(nc, size)
		var bw *bufio.Writer
		if cfg.Mode == Echo {
			bw = bufio.NewWriterSize(nc, size)
		}
		hdr := make([]byte, headerSize)
		var buf []byte
		var frames int64
		for {
			if _, err := io.ReadFull(br, hdr); err != nil {
				if err == io.EOF {
					err = nil
				}
				cfg.report(SinkDone{Frames: frames, At: time.Now(), Err: err})
				return
			}
			n, err := parseHeader(hdr)
			if err == nil && cfg.Mode == Sink && cfg.Size >= 0 && n != cfg.Size {
				err = errBadFrame
			}
			if err != nil {
				cfg.report(SinkDone{Frames: frames, At: time.Now(), Err: err})
				return
			}
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			p := buf[:n]
			if _, err := io.ReadFull(br, p); err != nil {
				cfg.report(SinkDone{Frames: frames, At: time.Now(), Err: err})
				return
			}
			frames++
			if bw == nil {
				continue
			}
			bw.Write(hdr)
			bw.Write(p)
			if br.Buffered() == 0 {
				if err := bw.Flush(); err != nil {
					return
				}
			}
		}
	})
}

// rawClient is the raw loop's client side, also used by the gnet rows
// (gnet is a server-side library).
type rawClient struct {
	nc   *net.TCPConn
	br   *bufio.Reader
	bw   *bufio.Writer
	hdr  []byte // for reading
	whdr []byte // for writing
	buf  []byte
}

func dialRaw(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	return &rawClient{
		nc:   nc,
		br:   bufio.NewReaderSize(nc, rawBufSize),
		bw:   bufio.NewWriterSize(nc, rawBufSize),
		hdr:  make([]byte, headerSize),
		whdr: make([]byte, headerSize),
	}, nil
}

func (c *rawClient) WriteFrame(p []byte) error {
	putHeader(c.whdr, len(p))
	c.bw.Write(c.whdr)
	_, err := c.bw.Write(p)
	return err
}

func (c *rawClient) Flush() error { return c.bw.Flush() }

func (c *rawClient) ReadFrame() ([]byte, error) {
	if _, err := io.ReadFull(c.br, c.hdr); err != nil {
		return nil, err
	}
	n, err := parseHeader(c.hdr)
	if err != nil {
		return nil, err
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	p := c.buf[:n]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *rawClient) Buffered() int                 { return c.br.Buffered() }
func (c *rawClient) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }
func (c *rawClient) Close() error                  { return c.nc.Close() }

func (c *rawClient) CloseWrite() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.nc.CloseWrite()
}
