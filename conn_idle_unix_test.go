//go:build unix

package framed

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdleTimeoutReadsAsRead checks that a timeout while idle between
// frames is worded as one inside a frame is: "read tcp ...", not the
// poller's "raw-read tcp ...".
func TestIdleTimeoutReadsAsRead(t *testing.T) {
	a, _ := tcpPairInternal(t)
	c := NewConn(a, ConnConfig{})
	require.NotNil(t, c.rd.wait, "a TCP socket is read directly while idle")
	err := c.waitFrame(10*time.Millisecond, 0)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "read", oe.Op)
	assert.Regexp(t, `^read tcp [^ ]+->[^ ]+: i/o timeout$`, err.Error())
}
