// Package framedtest is what tests of a framed service need, as
// net/http/httptest is for HTTP: a server started on a loopback port, an
// in-memory listener, a scripted peer, and faults that cut, delay, stall or
// break the bytes between two peers.
//
//   - [NewServer] starts a [github.com/framed-go/framed.Server] on a free
//     loopback port, and [NewFormatServer] one of another wire format;
//     [NewUnstartedServer] lets a test adjust it first, serve TLS with
//     [Server.StartTLS], or serve a [Listener] in memory. [Server.Dial]
//     connects a Client that trusts it and speaks its Format.
//   - [Listener] is a net.Listener whose connections live in memory and
//     behave as TCP ones do where tests rely on them: bounded buffers,
//     deadlines, CloseWrite and Close.
//   - [Script] is a peer that follows a script (send this frame or these
//     raw bytes, expect that frame, EOF or a close) and fails the test at
//     the first step that goes otherwise, with a hex dump; [NewFormatScript]
//     makes one for another wire format.
//   - [Faults] re-cut, gather, delay, throttle, hold back, limit or reset
//     the bytes going one way, after Toxiproxy's toxics: on one connection
//     with [WrapConn], or between any client and server with [NewProxy]
//     ([NewFormatProxy] for another wire format), whose [Proxy.Dial]
//     connects a Client through it. They may be changed while bytes flow.
//   - [Conformance] runs the numbered conformance cases of cmd/framedspec
//     against an echo server, each as a subtest: size edges, every split
//     and merge, limits, half-close, concurrency and backpressure.
//
// The package uses only the standard library and framed, so importing it
// adds nothing to a module's dependencies.
package framedtest
