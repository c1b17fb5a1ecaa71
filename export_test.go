package framed

// WriteWaiters returns how many goroutines wait in c's WriteFrame or Flush
// for the queue to drain. Tests use it to know that a writer has blocked
// before they act.
func WriteWaiters(c *Conn) int {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return c.q.waiters
}
