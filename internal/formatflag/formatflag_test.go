package formatflag_test

import (
	"flag"
	"io"
	"testing"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/internal/formatflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func parse(t *testing.T, args ...string) (framed.Format, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fl := formatflag.Register(fs)
	require.NoError(t, fs.Parse(args), "parse %q", args)
	return fl.Format()
}

func TestFlagsMapOntoFormat(t *testing.T) {
	tests := []struct {
		give []string
		want framed.Format
	}{
		{give: nil, want: framed.Format{}},
		{give: []string{"-size", "1"}, want: framed.Format{HeaderSize: 1}},
		{give: []string{"-size", "2", "-be"}, want: framed.Format{HeaderSize: 2, BigEndian: true}},
		{give: []string{"-size", "4"}, want: framed.Format{HeaderSize: 4}},
		{give: []string{"-size", "8", "-be"}, want: framed.Format{HeaderSize: 8, BigEndian: true}},
		{give: []string{"-size", "3", "-be", "-adjust", "6"}, want: framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6}},
		{give: []string{"-offset", "4", "-be"}, want: framed.Format{LengthOffset: 4, BigEndian: true}},
		{give: []string{"-adjust", "-4"}, want: framed.Format{LengthAdjust: -4}},
		{give: []string{"-be"}, want: framed.Format{BigEndian: true}},
		{give: []string{"-varint"}, want: framed.Format{Varint: true}},
		{give: []string{"-varint", "-max", "100"}, want: framed.Format{Varint: true, MaxFrameSize: 100}},
		{give: []string{"-max", "16"}, want: framed.Format{MaxFrameSize: 16}},
	}
	for _, tt := range tests {
		got, err := parse(t, tt.give...)
		require.NoError(t, err, "flags %q", tt.give)
		assert.Equal(t, tt.want, got, "flags %q", tt.give)
	}
}

func TestInvalidCombinationsAreRefusedByTheLibrary(t *testing.T) {
	tests := [][]string{
		{"-size", "5"},
		{"-size", "-1"},
		{"-size", "16"},
		{"-varint", "-size", "2"},
		{"-offset", "-1"},
		{"-offset", "5000"},
		{"-max", "-1"},
	}
	for _, give := range tests {
		_, err := parse(t, give...)
		assert.ErrorIs(t, err, framed.ErrInvalidFormat, "flags %q", give)
	}
}

func TestRegisterNamesEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	formatflag.Register(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	assert.ElementsMatch(t, []string{"size", "be", "varint", "offset", "adjust", "max"}, names)
}
