package framed

// Unexported parts of the codec that the tests in package framed_test use.

// NewReaderSize returns a Reader with a buffer of size bytes (at least 64),
// as NewConn makes for a ConnConfig with a ReadBufferSize.
var NewReaderSize = newReaderSize

// GrowChunk is how far a frame buffer may grow ahead of the bytes received.
const GrowChunk = growChunk
