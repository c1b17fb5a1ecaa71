package framed_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// goldenCase is one line of testdata/golden.txt; the file's header comment
// (and testdata/README.md) describe the format.
type goldenCase struct {
	line   int
	text   string
	kind   string // frame, decode or encode
	format framed.Format
	give   []byte
	want   []byte  // for frame
	err    wantErr // for decode and encode
}

var goldenHeaders = map[string]framed.Format{
	"le32":    {HeaderSize: 4},
	"be32":    {HeaderSize: 4, BigEndian: true},
	"le16":    {HeaderSize: 2},
	"be16":    {HeaderSize: 2, BigEndian: true},
	"u8":      {HeaderSize: 1},
	"le64":    {HeaderSize: 8},
	"be64":    {HeaderSize: 8, BigEndian: true},
	"uvarint": {Varint: true},
	"le24":    {HeaderSize: 3},
	"be24":    {HeaderSize: 3, BigEndian: true},

	// Layouts of real protocols, as README.md gives them.
	"zinx":    {LengthOffset: 4, BigEndian: true},
	"easytcp": {LengthAdjust: 4},
	"grpc":    {LengthOffset: 1, BigEndian: true},
	"http2":   {HeaderSize: 3, BigEndian: true, LengthAdjust: 6},
	"mysql":   {HeaderSize: 3, LengthAdjust: 1},
	"tls":     {LengthOffset: 3, HeaderSize: 2, BigEndian: true},
	"lenincl": {BigEndian: true, LengthAdjust: -4},
}

func parseGoldenFormat(s string) (framed.Format, error) {
	name, opts, _ := strings.Cut(s, ",")
	f, ok := goldenHeaders[name]
	if !ok {
		return f, fmt.Errorf("unknown header type %q", name)
	}
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == "" {
			continue
		}
		key, v, _ := strings.Cut(opt, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			return f, fmt.Errorf("%s: %w", key, err)
		}
		switch key {
		case "max":
			f.MaxFrameSize = n
		case "off":
			f.LengthOffset = n
		case "adj":
			f.LengthAdjust = n
		default:
			return f, fmt.Errorf("unknown option %q", opt)
		}
	}
	return f, nil
}

// parseGoldenBytes reads "-" or "+"-joined pieces of hex or "HH*N" runs.
func parseGoldenBytes(s string) ([]byte, error) {
	b := []byte{}
	if s == "-" {
		return b, nil
	}
	for piece := range strings.SplitSeq(s, "+") {
		hexPart, count, isRun := strings.Cut(piece, "*")
		v, err := hex.DecodeString(hexPart)
		if err != nil {
			return nil, fmt.Errorf("piece %q: %w", piece, err)
		}
		if isRun {
			n, err := strconv.Atoi(count)
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("run %q: want HH*N", piece)
			}
			v = bytes.Repeat(v, n)
		}
		b = append(b, v...)
	}
	return b, nil
}

func parseGoldenErr(s string) (wantErr, error) {
	switch s {
	case "EOF":
		return wantEOF, nil
	case "UnexpectedEOF":
		return wantUnexpectedEOF, nil
	case "InvalidLength":
		return wantInvalidLength, nil
	}
	var size uint64
	var limit int
	if _, err := fmt.Sscanf(s, "FrameTooShort:%d:%d", &size, &limit); err == nil {
		return wantTooShort(int(size), limit), nil
	}
	if _, err := fmt.Sscanf(s, "FrameTooLarge:%d:%d", &size, &limit); err != nil {
		return wantErr{}, fmt.Errorf("unknown error %q", s)
	}
	return wantTooLarge(size, limit), nil
}

func readGolden(t *testing.T, path string) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err, "read %s", path)
	var cases []goldenCase
	for i, text := range strings.Split(string(data), "\n") {
		text, _, _ = strings.Cut(text, "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		require.Len(t, fields, 4, "%s:%d: want 4 fields: %q", path, i+1, text)
		c := goldenCase{line: i + 1, text: strings.Join(fields, " "), kind: fields[0]}
		c.format, err = parseGoldenFormat(fields[1])
		require.NoError(t, err, "%s:%d: format", path, i+1)
		c.give, err = parseGoldenBytes(fields[2])
		require.NoError(t, err, "%s:%d: bytes", path, i+1)
		switch c.kind {
		case "frame":
			c.want, err = parseGoldenBytes(fields[3])
		case "decode", "encode":
			c.err, err = parseGoldenErr(fields[3])
		default:
			err = fmt.Errorf("unknown kind %q", c.kind)
		}
		require.NoError(t, err, "%s:%d", path, i+1)
		cases = append(cases, c)
	}
	return cases
}

// TestGolden checks the codec against testdata/golden.txt in both
// directions: the vectors pin the wire format for other implementations.
func TestGolden(t *testing.T) {
	tests := readGolden(t, "testdata/golden.txt")
	covered := map[string]bool{}
	for _, tt := range tests {
		name := fmt.Sprintf("line %d", tt.line)
		msg := fmt.Sprintf("golden.txt:%d: %.80s", tt.line, tt.text)
		t.Run(name, func(t *testing.T) {
			f := tt.format
			switch tt.kind {
			case "frame":
				got, err := f.Encode(tt.give)
				require.NoError(t, err, "%s: Encode", msg)
				assert.True(t, bytes.Equal(tt.want, got), "%s: Encode gives %.32x…", msg, got)

				var out bytes.Buffer
				w := framed.NewWriter(&out, f)
				require.NoError(t, w.WriteFrame(tt.give), "%s: WriteFrame", msg)
				require.NoError(t, w.Flush(), "%s: Flush", msg)
				assert.True(t, bytes.Equal(tt.want, out.Bytes()), "%s: Writer gives %.32x…", msg, out.Bytes())

				frames, err := readFrames(framed.NewReader(bytes.NewReader(tt.want), f))
				assertFrames(t, [][]byte{tt.give}, frames, "%s: ReadFrame", msg)
				checkErr(t, wantEOF, err, "%s: ReadFrame at the end", msg)

				frames, err = decodeFrames(f, bufio.NewReader(bytes.NewReader(tt.want)))
				assertFrames(t, [][]byte{tt.give}, frames, "%s: Decode", msg)
				checkErr(t, wantEOF, err, "%s: Decode at the end", msg)

			case "decode":
				p, err := framed.NewReader(bytes.NewReader(tt.give), f).ReadFrame()
				assert.Nil(t, p, "%s: ReadFrame", msg)
				checkErr(t, tt.err, err, "%s: ReadFrame", msg)

				p, err = f.Decode(bufio.NewReader(bytes.NewReader(tt.give)))
				assert.Nil(t, p, "%s: Decode", msg)
				checkErr(t, tt.err, err, "%s: Decode", msg)

			case "encode":
				p, err := f.Encode(tt.give)
				assert.Nil(t, p, "%s: Encode", msg)
				checkErr(t, tt.err, err, "%s: Encode", msg)

				w := framed.NewWriter(io.Discard, f)
				checkErr(t, tt.err, w.WriteFrame(tt.give), "%s: WriteFrame", msg)
			}
		})
		covered[strings.Fields(tt.text)[1]+" "+tt.kind] = true
	}
	for name := range goldenHeaders {
		for _, kind := range []string{"frame", "decode"} {
			assert.True(t, covered[name+" "+kind], "golden.txt has a %s case for %s", kind, name)
		}
	}
}
