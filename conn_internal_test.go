package framed

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnReleasesQueueWhenIdle checks that the large write queues a burst
// of writers grows are kept while writes go on and dropped by
// releaseQueue, which a server calls while a connection waits for its
// next frame.
func TestConnReleasesQueueWhenIdle(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a, ConnConfig{})
	defer c.Close()
	drained := make(chan struct{})
	go func() { defer close(drained); io.Copy(io.Discard, b) }()

	var wg sync.WaitGroup
	msg := make([]byte, 1000)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if err := c.WriteFrame(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Flush())
	c.q.mu.Lock()
	grown := max(cap(c.q.buf), cap(c.q.spare))
	c.q.mu.Unlock()
	t.Logf("largest queue after the burst: %d bytes", grown)

	c.q.release()
	c.q.mu.Lock()
	assert.LessOrEqual(t, cap(c.q.buf), keepQueueCap, "queue after releaseQueue")
	assert.LessOrEqual(t, cap(c.q.spare), keepQueueCap, "spare after releaseQueue")
	c.q.mu.Unlock()

	require.NoError(t, c.WriteFrame(msg), "the Conn still writes")
	require.NoError(t, c.Close())
	<-drained
}
