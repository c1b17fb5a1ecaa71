package framed_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/framed-go/framed"
)

// TestRejectBeforeReadingPayload checks that a hostile header is refused from
// the header alone: the source would fail the read of anything after it.
func TestRejectBeforeReadingPayload(t *testing.T) {
	errPayloadRead := errors.New("read past a hostile header")
	tests := []struct {
		name string
		f    framed.Format
		give []byte
		want wantErr
	}{
		{name: "default limit+1", give: []byte{0x01, 0x00, 0x40, 0x00}, want: wantTooLarge(4<<20+1, 4<<20)},
		{name: "default negative", give: []byte{0x00, 0x00, 0x00, 0x80}, want: wantInvalidLength},
		{name: "default max int32", give: []byte{0xff, 0xff, 0xff, 0x7f}, want: wantTooLarge(math.MaxInt32, 4<<20)},
		{name: "be64 limit+1", f: framed.Format{HeaderSize: 8, BigEndian: true}, give: header(framed.Format{HeaderSize: 8, BigEndian: true}, 4<<20+1), want: wantTooLarge(4<<20+1, 4<<20)},
		{name: "uvarint limit+1", f: framed.Format{Varint: true}, give: binary.AppendUvarint(nil, 4<<20+1), want: wantTooLarge(4<<20+1, 4<<20)},
		{name: "u8 max=10", f: framed.Format{HeaderSize: 1, MaxFrameSize: 10}, give: []byte{11}, want: wantTooLarge(11, 10)},
		{name: "zinx limit+1", f: framed.Format{LengthOffset: 4, BigEndian: true}, give: []byte{0, 0, 0, 1, 0x00, 0x3f, 0xff, 0xfd}, want: wantTooLarge(4<<20+1, 4<<20)},
		{name: "zinx negative", f: framed.Format{LengthOffset: 4, BigEndian: true}, give: []byte{0, 0, 0, 1, 0x80, 0, 0, 0}, want: wantInvalidLength},
		{name: "adjusted below zero", f: framed.Format{BigEndian: true, LengthAdjust: -4}, give: []byte{0, 0, 0, 3}, want: wantInvalidLength},
		{name: "adjusted above the limit", f: framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16390}, give: []byte{0x00, 0x40, 0x01}, want: wantTooLarge(16391, 16390)},
		{name: "3-byte LE largest", f: framed.Format{HeaderSize: 3, LengthAdjust: 1}, give: []byte{0xff, 0xff, 0xff}, want: wantTooLarge(1<<24, 4<<20)},
		{name: "varint after an offset", f: framed.Format{Varint: true, LengthOffset: 2, MaxFrameSize: 100}, give: []byte{9, 9, 99}, want: wantTooLarge(101, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := func() io.Reader {
				return &scriptReader{steps: []step{{data: tt.give, err: errPayloadRead}}}
			}
			_, err := framed.NewReader(src(), tt.f).ReadFrame()
			checkErr(t, tt.want, err, "ReadFrame of %s", tt.name)
			_, err = tt.f.Decode(bufio.NewReader(src()))
			checkErr(t, tt.want, err, "Decode of %s", tt.name)
		})
	}
}

var invalidFormats = []framed.Format{
	{HeaderSize: -1},
	{HeaderSize: -8},
	{HeaderSize: 5},
	{HeaderSize: 16},
	{Varint: true, HeaderSize: 4},
	{MaxFrameSize: -1},
	{Varint: true, MaxFrameSize: -5},
	{LengthOffset: -1},
	{LengthOffset: 1025},
	{LengthAdjust: math.MaxInt32 + 1},
	{LengthAdjust: -math.MaxInt32 - 1},
	{HeaderSize: 1, LengthAdjust: -256},
	{HeaderSize: 2, LengthAdjust: -65536},
	{LengthOffset: 4, MaxFrameSize: 3},
	{LengthAdjust: 6, MaxFrameSize: 5},
}

func TestInvalidFormat(t *testing.T) {
	for _, f := range invalidFormats {
		name := fmt.Sprintf("%+v", f)
		t.Run(name, func(t *testing.T) {
			stream := frame(framed.Format{}, []byte("hello"))

			for _, msg := range [][]byte{nil, []byte("x")} {
				got, err := f.Encode(msg)
				assert.ErrorIs(t, err, framed.ErrInvalidFormat, "Encode with %s of %q", name, msg)
				assert.Nil(t, got, "Encode with %s of %q", name, msg)
			}

			dst := []byte("kept")
			got, err := f.AppendFrame(dst, []byte("x"))
			assert.ErrorIs(t, err, framed.ErrInvalidFormat, "AppendFrame with %s", name)
			assert.Equal(t, []byte("kept"), got, "AppendFrame with %s leaves dst unchanged", name)

			p, err := f.Decode(bufio.NewReader(bytes.NewReader(stream)))
			assert.ErrorIs(t, err, framed.ErrInvalidFormat, "Decode with %s", name)
			assert.Nil(t, p, "Decode with %s", name)

			r := framed.NewReader(bytes.NewReader(stream), f)
			for range 2 {
				p, err = r.ReadFrame()
				assert.ErrorIs(t, err, framed.ErrInvalidFormat, "ReadFrame with %s", name)
				assert.Nil(t, p, "ReadFrame with %s", name)
			}

			var out bytes.Buffer
			w := framed.NewWriter(&out, f)
			assert.ErrorIs(t, w.WriteFrame([]byte("x")), framed.ErrInvalidFormat, "WriteFrame with %s", name)
			assert.ErrorIs(t, w.Flush(), framed.ErrInvalidFormat, "Flush with %s", name)
			assert.Zero(t, out.Len(), "Writer with %s writes nothing", name)
		})
	}
}

func TestLimit(t *testing.T) {
	tests := []struct {
		give framed.Format
		want int
	}{
		{give: framed.Format{}, want: 4 << 20},
		{give: framed.Format{MaxFrameSize: 10}, want: 10},
		{give: framed.Format{MaxFrameSize: 1 << 40}, want: math.MaxInt32},
		{give: framed.Format{HeaderSize: 1}, want: 255},
		{give: framed.Format{HeaderSize: 1, MaxFrameSize: 1000}, want: 255},
		{give: framed.Format{HeaderSize: 1, MaxFrameSize: 7}, want: 7},
		{give: framed.Format{HeaderSize: 2, BigEndian: true}, want: 65535},
		{give: framed.Format{HeaderSize: 2, MaxFrameSize: 1 << 20}, want: 65535},
		{give: framed.Format{HeaderSize: 2, MaxFrameSize: 512}, want: 512},
		{give: framed.Format{HeaderSize: 8}, want: 4 << 20},
		{give: framed.Format{HeaderSize: 8, MaxFrameSize: 1 << 40}, want: 1 << 40},
		{give: framed.Format{Varint: true}, want: 4 << 20},
		{give: framed.Format{Varint: true, MaxFrameSize: 1 << 40}, want: 1 << 40},
		{give: framed.Format{HeaderSize: 3}, want: 4 << 20},
		{give: framed.Format{HeaderSize: 3, MaxFrameSize: 1 << 30}, want: 1<<24 - 1},
		{give: framed.Format{HeaderSize: 3, MaxFrameSize: 1 << 10}, want: 1 << 10},
		{give: framed.Format{HeaderSize: 3, LengthAdjust: 6, MaxFrameSize: 1 << 30}, want: 1<<24 - 1 + 6},
		{give: framed.Format{HeaderSize: 1, LengthOffset: 4}, want: 255 + 4},
		{give: framed.Format{HeaderSize: 1, LengthAdjust: -1}, want: 254},
		{give: framed.Format{HeaderSize: 1, LengthAdjust: -255}, want: 0},
		{give: framed.Format{HeaderSize: 2, LengthOffset: 3, MaxFrameSize: 1 << 20}, want: 65535 + 3},
		{give: framed.Format{LengthOffset: 4, MaxFrameSize: 1 << 40}, want: math.MaxInt32 + 4},
		{give: framed.Format{LengthAdjust: -4, MaxFrameSize: 1 << 40}, want: math.MaxInt32 - 4},
		{give: framed.Format{HeaderSize: 8, LengthAdjust: 8, LengthOffset: 2, MaxFrameSize: math.MaxInt}, want: math.MaxInt},
		{give: framed.Format{LengthOffset: 4}, want: 4 << 20},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.give.Limit(), "Limit of %+v", tt.give)
	}
	assert.Equal(t, 4<<20, framed.DefaultMaxFrameSize, "the documented default")
}
