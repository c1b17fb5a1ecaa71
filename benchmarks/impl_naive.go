package main

import (
	"io"
	"net"
	"time"
)

// naiveImpl is the way tutorials frame messages: no buffering, a new slice
// for every header and payload, and the header and the payload sent with
// two Write calls.
func naiveImpl() Impl {
	return Impl{
		Name:  "naive",
		Key:   "naive",
		Note:  "tutorial: unbuffered, make([]byte, n) per frame, header and payload in two Writes",
		Serve: serveNaive,
		Dial:  dialNaive,
	}
}

func serveNaive(cfg ServerConfig) (Server, error) {
	return startConnServer(func(nc net.Conn) {
		var frames int64
		for {
			p, err := naiveRead(nc)
			if err == nil && cfg.Mode == Sink && cfg.Size >= 0 && len(p) != cfg.Size {
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
				if err := naiveWrite(nc, p); err != nil {
					return
				}
			}
		}
	})
}

func naiveRead(nc net.Conn) ([]byte, error) {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		return nil, err
	}
	n, err := parseHeader(hdr)
	if err != nil {
		return nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(nc, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

func naiveWrite(nc net.Conn, p []byte) error {
	hdr := make([]byte, headerSize)
	putHeader(hdr, len(p))
	if _, err := nc.Write(hdr); err != nil {
		return err
	}
	_, err := nc.Write(p)
	return err
}

type naiveClient struct{ nc *net.TCPConn }

func dialNaive(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	return naiveClient{nc}, nil
}

func (c naiveClient) WriteFrame(p []byte) error     { return naiveWrite(c.nc, p) }
func (c naiveClient) Flush() error                  { return nil }
func (c naiveClient) ReadFrame() ([]byte, error)    { return naiveRead(c.nc) }
func (c naiveClient) Buffered() int                 { return 0 }
func (c naiveClient) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }
func (c naiveClient) CloseWrite() error             { return c.nc.CloseWrite() }
func (c naiveClient) Close() error                  { return c.nc.Close() }
