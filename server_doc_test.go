package framed_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// serverFieldDoc returns the doc comment of the Server field name in
// server.go, on one line.
func serverFieldDoc(t *testing.T, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "server.go", nil, parser.ParseComments)
	require.NoError(t, err)
	var doc string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Server" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			for _, id := range field.Names {
				if id.Name == name {
					doc = field.Doc.Text()
				}
			}
		}
		return false
	})
	require.NotEmpty(t, doc, "Server.%s has a doc comment", name)
	return strings.Join(strings.Fields(doc), " ")
}

// levelRecorder is a slog.Handler that keeps the level of each message.
type levelRecorder struct {
	mu     sync.Mutex
	levels map[string]slog.Level
}

func (h *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *levelRecorder) WithGroup(string) slog.Handler            { return h }

func (h *levelRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels[r.Message] = r.Level
	return nil
}

func (h *levelRecorder) level(t *testing.T, msg string) slog.Level {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.levels[msg]
	require.True(t, ok, "%q was logged", msg)
	return l
}

// TestServerLoggerDocLevels: the levels that Server.Logger's doc gives
// are those the Server logs at.
func TestServerLoggerDocLevels(t *testing.T) {
	doc := serverFieldDoc(t, "Logger")
	docLevel := func(what string) slog.Level {
		m := regexp.MustCompile(regexp.QuoteMeta(what) + `[^.;,]*? at level (\w+)`).FindStringSubmatch(doc)
		require.NotNil(t, m, "Logger's doc gives the level of %s: %q", what, doc)
		var l slog.Level
		require.NoError(t, l.UnmarshalText([]byte(m[1])), "Logger's doc: level of %s", what)
		return l
	}

	rec := &levelRecorder{levels: map[string]slog.Level{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tl := &tempListener{Listener: ln}
	tl.n.Store(1)
	closed := make(chan struct{}, 1)
	s := &framed.Server{
		Logger: slog.New(rec),
		Handler: framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error {
			panic("handler bug")
		}),
		ConnState: func(_ *framed.Conn, st framed.ConnState) {
			if st == framed.StateClosed {
				closed <- struct{}{}
			}
		},
	}
	r := serveOn(t, s, tl)
	require.NoError(t, dial(t, r.addr).WriteFrame([]byte("panic")))
	wait(t, closed, "the connection to close")

	tests := []struct {
		doc string // what the doc names
		msg string // the message the Server logs
	}{
		{"handler panics", "framed: handler panic"},
		{"accept errors", "framed: accept failed; retrying"},
		{"why each connection closed", "framed: connection closed"},
	}
	for _, tt := range tests {
		assert.Equal(t, docLevel(tt.doc), rec.level(t, tt.msg), "the level of %s", tt.doc)
	}
}

// TestServerHandlerReadsFrames: a handler may read the connection's next
// frames itself, as its doc says, whether they arrived with the frame it
// serves or come later; those are not served, and the frames after them
// are, in order.
func TestServerHandlerReadsFrames(t *testing.T) {
	reading := make(chan struct{}, 4)
	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if string(p) != "begin" {
			return c.WriteFrame(p)
		}
		reading <- struct{}{}
		body, err := c.ReadFrame()
		if err != nil {
			return err
		}
		return c.WriteFrame([]byte("begin:" + string(body)))
	})}
	r := serve(t, s)
	for _, together := range []bool{true, false} {
		t.Run(fmt.Sprintf("together=%v", together), func(t *testing.T) {
			nc := dialRaw(t, r.addr)
			write := func(msgs ...string) {
				var b []byte
				for _, m := range msgs {
					b = append(b, encoded(t, []byte(m))...)
				}
				_, err := nc.Write(b)
				require.NoError(t, err)
			}
			if together {
				write("begin", "one", "ping", "begin", "two")
			} else {
				write("begin")
				wait(t, reading, "the handler to read the body")
				write("one", "ping", "begin")
				wait(t, reading, "the handler to read the body")
				write("two")
			}
			rd := framed.NewReader(nc, framed.Format{})
			for _, want := range []string{"begin:one", "ping", "begin:two"} {
				got, err := rd.ReadFrame()
				require.NoError(t, err)
				assert.Equal(t, want, string(got))
			}
		})
	}
}
