package main

import (
	"io"
	"net"
	"time"

	"github.com/libp2p/go-msgio"
)

// msgioImpl is github.com/libp2p/go-msgio with its native framing: a 4-byte
// BIG-endian uint32 length (msgio.NBO), not framed's little-endian int32.
// Its Writer sends header and payload in one Write (copied into a pooled
// buffer); its Reader is unbuffered: io.ReadFull of the header, then of the
// payload into a pooled buffer, two reads per frame.
func msgioImpl() Impl {
	return Impl{
		Name:      "go-msgio",
		Key:       "msgio",
		Note:      "libp2p/go-msgio v0.3.0, its big-endian uint32 prefix; one Write per frame, two unbuffered reads",
		BigEndian: true,
		Serve:     serveMsgio,
		Dial:      dialMsgio,
	}
}

func serveMsgio(cfg ServerConfig) (Server, error) {
	return startConnServer(func(nc net.Conn) {
		r := msgio.NewReaderSize(nc, maxFrame)
		w := msgio.NewWriter(nc)
		var frames int64
		for {
			msg, err := r.ReadMsg()
			if err == nil && cfg.Mode == Sink && cfg.Size >= 0 && len(msg) != cfg.Size {
				err = errBadFrame
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				cfg.report(SinkDone{Frames: frames, At: time.Now(), Err: err})
				return
			}
			frames++
			if cfg.Mode == Echo {
				err = w.WriteMsg(msg)
			}
			r.ReleaseMsg(msg)
			if err != nil {
				return
			}
		}
	})
}

type msgioClient struct {
	nc   *net.TCPConn
	r    msgio.ReadCloser
	w    msgio.WriteCloser
	last []byte // the message ReadFrame returned last, released on the next call
}

func dialMsgio(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	return &msgioClient{nc: nc, r: msgio.NewReaderSize(nc, maxFrame), w: msgio.NewWriter(nc)}, nil
}

func (c *msgioClient) WriteFrame(p []byte) error { return c.w.WriteMsg(p) }
func (c *msgioClient) Flush() error              { return nil }

func (c *msgioClient) ReadFrame() ([]byte, error) {
	if c.last != nil {
		c.r.ReleaseMsg(c.last)
		c.last = nil
	}
	msg, err := c.r.ReadMsg()
	if err != nil {
		return nil, err
	}
	c.last = msg
	return msg, nil
}

func (c *msgioClient) Buffered() int                 { return 0 }
func (c *msgioClient) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }
func (c *msgioClient) CloseWrite() error             { return c.nc.CloseWrite() }
func (c *msgioClient) Close() error                  { return c.nc.Close() }
