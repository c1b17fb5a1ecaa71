package framed

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReaderBufferedFrame checks that bufferedFrame returns the frames
// ReadFrame would, in order, only while they are buffered whole, and
// leaves a header ReadFrame must refuse, and a frame not yet whole, to
// ReadFrame.
func TestReaderBufferedFrame(t *testing.T) {
	tests := []struct {
		name string
		f    Format
	}{
		{"default", Format{}},
		{"default with a limit", Format{MaxFrameSize: 100}},
		{"HeaderSize 4", Format{HeaderSize: 4}},
		{"big-endian", Format{BigEndian: true}},
		{"HeaderSize 2", Format{HeaderSize: 2}},
		{"varint", Format{Varint: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &bytes.Buffer{}
			fw := NewWriter(w, tt.f)
			msgs := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte("x"), 90), []byte("last")}
			for _, m := range msgs {
				require.NoError(t, fw.WriteFrame(m))
			}
			require.NoError(t, fw.Flush())
			stream := w.Bytes()
			// All but the last byte arrive: the last frame is not whole.
			src := &bytes.Buffer{}
			src.Write(stream[:len(stream)-1])
			r := newReaderSize(src, tt.f, 4096)
			p, err := r.ReadFrame()
			require.NoError(t, err)
			assert.Equal(t, msgs[0], p)
			require.Zero(t, src.Len(), "the first read took all that had arrived")
			for _, want := range msgs[1:3] {
				p, ok := r.bufferedFrame()
				require.True(t, ok, "frame %q is buffered whole", want)
				assert.Equal(t, want, p)
			}
			_, ok := r.bufferedFrame()
			assert.False(t, ok, "the last frame is not whole")
			src.Write(stream[len(stream)-1:])
			p, err = r.ReadFrame()
			require.NoError(t, err)
			assert.Equal(t, msgs[3], p)
		})
	}

	refused := []struct {
		name   string
		header []byte
	}{
		{"negative", []byte{0xff, 0xff, 0xff, 0xff}},
		{"above the limit", []byte{0x01, 0x00, 0x00, 0x01}},
		{"partial header", []byte{0x01, 0x00}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := AppendFrame(nil, []byte("ok"))
			require.NoError(t, err)
			stream = append(stream, tt.header...)
			r := NewReader(bytes.NewReader(stream), Format{})
			_, err = r.ReadFrame()
			require.NoError(t, err)
			_, ok := r.bufferedFrame()
			assert.False(t, ok, "bufferedFrame leaves %s to ReadFrame", tt.name)
			assert.Equal(t, len(tt.header), r.Buffered(), "nothing consumed")
		})
	}
}
