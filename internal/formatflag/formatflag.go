// Package formatflag defines the command-line flags that describe a
// [framed.Format], one flag per field, so that every command of this
// module spells a wire format the same way.
//
// Each flag is bound to its Format field: the flag's zero value is the
// field's zero value, so a command run without these flags speaks the
// library's default format. [Flags.Format] checks the result with the
// library, and an invalid combination is an error matching
// [framed.ErrInvalidFormat].
package formatflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/framed-go/framed"
)

// Flags holds the Format that the flags registered by [Register] fill in.
type Flags struct {
	f framed.Format
}

// Register defines the Format flags on fs and returns the Flags they fill
// in when fs is parsed:
//
//	-size N    Format.HeaderSize: 1, 2, 3, 4 or 8 bytes (0 means 4)
//	-be        Format.BigEndian
//	-varint    Format.Varint
//	-offset N  Format.LengthOffset: header bytes before the length field
//	-adjust N  Format.LengthAdjust: added to the length to give the bytes after the field
//	-max N     Format.MaxFrameSize: the largest frame, without its length field (0 means framed.DefaultMaxFrameSize)
//
// A flag for a new Format field is one more line here, bound to that field.
func Register(fs *flag.FlagSet) *Flags {
	fl := &Flags{}
	fs.IntVar(&fl.f.HeaderSize, "size", 0, "length field size in `bytes`: 1, 2, 3, 4 or 8 (0 means 4)")
	fs.BoolVar(&fl.f.BigEndian, "be", false, "big-endian length header (default little-endian)")
	fs.BoolVar(&fl.f.Varint, "varint", false, "unsigned varint length header, as protobuf's delimited streams (not with -size)")
	fs.IntVar(&fl.f.LengthOffset, "offset", 0, "header `bytes` before the length field (zinx: 4, gRPC: 1, TLS: 3)")
	fs.IntVar(&fl.f.LengthAdjust, "adjust", 0, "`n` added to the length to give the bytes after the field (HTTP/2: 6; a length that counts its own 4 bytes: -4)")
	fs.IntVar(&fl.f.MaxFrameSize, "max", 0, fmt.Sprintf("largest frame in `bytes`, without its length field (0 means %d)", framed.DefaultMaxFrameSize))
	return fl
}

// Format returns the Format the flags describe, or an error matching
// [framed.ErrInvalidFormat] when the library would refuse it.
func (fl *Flags) Format() (framed.Format, error) {
	if err := Check(fl.f); err != nil {
		return framed.Format{}, err
	}
	return fl.f, nil
}

// Check reports whether the library accepts f: nil, or an error matching
// [framed.ErrInvalidFormat] that names what is wrong.
func Check(f framed.Format) error {
	// The library checks a Format wherever work starts. A Reader of an
	// empty stream reports either that check's error or io.EOF, whatever
	// the layout, so no frame of ours can trip a different error first.
	_, err := framed.NewReader(strings.NewReader(""), f).ReadFrame()
	if errors.Is(err, framed.ErrInvalidFormat) {
		return err
	}
	return nil
}
