package framed_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerRunOfFrames sends frames that arrive together, so the server
// serves them as one run, and checks the run's guarantees: frames served
// in order, one handler call each, the replies of the frames before a
// failing one delivered, and the frames after it never served.
func TestServerRunOfFrames(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantServed []string
		wantPanics int64
		wantErrors int64
	}{
		{"all served", []string{"a", "b", "c", "d"}, []string{"a", "b", "c", "d"}, 0, 0},
		{"panic mid-run", []string{"a", "b", "panic", "c", "d"}, []string{"a", "b", "panic"}, 1, 0},
		{"error mid-run", []string{"a", "fail", "b"}, []string{"a", "fail"}, 0, 1},
		{"panic first", []string{"panic", "a"}, []string{"panic"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var served []string
			hook, closed := closedHook(1)
			s := &framed.Server{
				ConnState: hook,
				Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
					mu.Lock()
					served = append(served, string(p))
					mu.Unlock()
					switch string(p) {
					case "panic":
						panic("handler bug")
					case "fail":
						return assert.AnError
					}
					return c.WriteFrame(p)
				}),
			}
			r := serve(t, s)
			nc := dialRaw(t, r.addr)
			var stream []byte
			for _, m := range tt.give {
				var err error
				stream, err = framed.AppendFrame(stream, []byte(m))
				require.NoError(t, err)
			}
			_, err := nc.Write(stream) // one write: the frames arrive together
			require.NoError(t, err)
			require.NoError(t, nc.CloseWrite())

			rd := framed.NewReader(nc, framed.Format{})
			var replies []string
			for {
				p, err := rd.ReadFrame()
				if err != nil {
					assert.ErrorIs(t, err, io.EOF, "the stream ends between frames")
					break
				}
				replies = append(replies, string(p))
			}
			wait(t, closed, "the connection to close")
			mu.Lock()
			assert.Equal(t, tt.wantServed, served, "frames served, in order")
			mu.Unlock()
			var wantReplies []string
			for _, m := range tt.wantServed {
				if m != "panic" && m != "fail" {
					wantReplies = append(wantReplies, m)
				}
			}
			assert.Equal(t, wantReplies, replies, "replies delivered before the connection closed")
			st := s.Stats()
			assert.Equal(t, int64(len(tt.wantServed)), st.FramesIn, "FramesIn")
			assert.Equal(t, tt.wantPanics, st.PanicsRecovered, "PanicsRecovered")
			assert.Equal(t, tt.wantErrors, st.HandlerErrors, "HandlerErrors")
		})
	}
}
