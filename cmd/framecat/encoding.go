package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/framed-go/framed"
)

// msgReader reads input messages. next returns a slice of its own, and
// io.EOF once the input ends.
type msgReader interface {
	next() ([]byte, error)
}

// newMsgReader returns the reader of enc's messages from r. Frames of f
// bound the raw encoding, and the length of a line.
func newMsgReader(enc string, r io.Reader, f framed.Format) msgReader {
	if enc == "raw" {
		return &rawReader{r: framed.NewReader(r, f)}
	}
	// A line may spell a frame of the limit with spaced hex (3 bytes per
	// byte) and a line ending; anything longer is refused before it is
	// all held in memory. Up to 64 KiB, a line too long for the limit
	// gets to the writer, which names the frame's size and the limit.
	maxLine := 64 << 10
	if limit := f.Limit(); limit >= (1<<31)/3 {
		maxLine = 1 << 31
	} else if 3*limit+64 > maxLine {
		maxLine = 3*limit + 64
	}
	l := &lineReader{r: bufio.NewReader(r), max: maxLine}
	switch enc {
	case "hex":
		l.decode = decodeHex
	case "base64":
		l.decode = decodeBase64
	case "json":
		l.decode, l.skipBlank = decodeJSON, true
	default:
		l.decode = func(line []byte) ([]byte, error) { return bytes.Clone(line), nil }
	}
	return l
}

// rawReader reads frames as they are on the wire.
type rawReader struct{ r *framed.Reader }

func (r *rawReader) next() ([]byte, error) {
	p, err := r.r.ReadFrame()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read input: %w", plain(err))
	}
	return bytes.Clone(p), nil
}

// lineReader reads one message per line, without the line ending ("\n" or
// "\r\n"). The last line needs no ending.
type lineReader struct {
	r         *bufio.Reader
	buf       []byte
	line      int
	max       int
	decode    func([]byte) ([]byte, error)
	skipBlank bool
}

func (l *lineReader) next() ([]byte, error) {
	for {
		line, err := l.readLine()
		if err != nil {
			return nil, err
		}
		if l.skipBlank && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		msg, err := l.decode(line)
		if err != nil {
			return nil, fmt.Errorf("input line %d: %w", l.line, err)
		}
		return msg, nil
	}
}

func (l *lineReader) readLine() ([]byte, error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		l.buf = append(l.buf, chunk...)
		if len(l.buf) > l.max {
			return nil, fmt.Errorf("input line %d: longer than %d bytes", l.line+1, l.max)
		}
		switch {
		case err == nil:
			l.line++
			line := l.buf[:len(l.buf)-1]
			return bytes.TrimSuffix(line, []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(l.buf) > 0:
			l.line++
			return l.buf, nil
		case err == io.EOF:
			return nil, io.EOF
		default:
			return nil, fmt.Errorf("read input: %w", err)
		}
	}
}

func decodeHex(line []byte) ([]byte, error) {
	digits := make([]byte, 0, len(line))
	for _, c := range line {
		if c != ' ' && c != '\t' {
			digits = append(digits, c)
		}
	}
	msg := make([]byte, hex.DecodedLen(len(digits)))
	if _, err := hex.Decode(msg, digits); err != nil {
		return nil, fmt.Errorf("hex: %w", err)
	}
	return msg, nil
}

func decodeBase64(line []byte) ([]byte, error) {
	msg, err := base64.StdEncoding.AppendDecode(nil, bytes.TrimSpace(line))
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	return msg, nil
}

// jsonMsg is a message of the json encoding. On input, len is optional;
// when present it must be the length of data.
type jsonMsg struct {
	Len  *int    `json:"len"`
	Data *[]byte `json:"data"`
}

func decodeJSON(line []byte) ([]byte, error) {
	var m jsonMsg
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if m.Data == nil {
		return nil, errors.New(`json: no "data"`)
	}
	if m.Len != nil && *m.Len != len(*m.Data) {
		return nil, fmt.Errorf(`json: "len" is %d but "data" holds %d bytes`, *m.Len, len(*m.Data))
	}
	if *m.Data == nil {
		return []byte{}, nil
	}
	return *m.Data, nil
}

// msgWriter writes messages to the output, each in one write as it comes,
// from any number of goroutines.
type msgWriter struct {
	mu  sync.Mutex
	enc string
	w   io.Writer
	raw *framed.Writer
	buf []byte
}

func newMsgWriter(enc string, w io.Writer, f framed.Format) *msgWriter {
	m := &msgWriter{enc: enc}
	if enc == "raw" {
		m.raw = framed.NewWriter(w, f)
	} else {
		m.w = w
	}
	return m
}

func (m *msgWriter) write(p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw != nil {
		if err := m.raw.WriteFrame(p); err != nil {
			return fmt.Errorf("write output: %w", plain(err))
		}
		return m.raw.Flush()
	}
	b := m.buf[:0]
	switch m.enc {
	case "hex":
		b = hex.AppendEncode(b, p)
	case "base64":
		b = base64.StdEncoding.AppendEncode(b, p)
	case "json":
		b = append(b, `{"len":`...)
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, p)
		b = append(b, `"}`...)
	default:
		b = append(b, p...)
	}
	b = append(b, '\n')
	m.buf = b
	if _, err := m.w.Write(b); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
