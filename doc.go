// Package framed sends and receives whole messages over TCP.
//
// TCP is a byte stream. Small writes get merged and large ones split, so a
// reader cannot see where one message ends and the next begins (the
// "sticky packet" problem). framed puts the length of every message in
// front of it, and gives the reader back exactly the messages that were
// written, however the stream was cut on the way.
//
// # Wire format
//
// A frame is a 4-byte length, a little-endian int32, followed by that many
// payload bytes:
//
//	+----------------------------+---------------------------+
//	| length: int32 little-endian| payload: length bytes     |
//	+----------------------------+---------------------------+
//
// A 5-byte payload "hello" is sent as
//
//	05 00 00 00 68 65 6c 6c 6f
//
// and an empty payload as 00 00 00 00. The length is at most the limit,
// [DefaultMaxFrameSize] (4 MiB) unless set otherwise. A negative length is
// [ErrInvalidLength] and a length above the limit is a [*FrameTooLargeError];
// both are found from the header alone, before any payload is read or
// allocated, and both leave the stream unusable. The end of the stream
// exactly between frames is [io.EOF]; anywhere inside a frame it is
// [io.ErrUnexpectedEOF].
//
// These are the same bytes as Netty's LengthFieldBasedFrameDecoder(
// LITTLE_ENDIAN, max, 0, 4, 0, 4, true) with LengthFieldPrepender(
// LITTLE_ENDIAN, 4). Many protocols use big-endian or other header widths
// instead: a [Format] describes those (1, 2, 3, 4 or 8 bytes, either byte
// order, or an unsigned varint as in protobuf's delimited streams).
//
// # Other layouts
//
// A [Format] also describes a length field that is not first and a
// length that does not count exactly the bytes after it, as Netty's
// LengthFieldBasedFrameDecoder and tokio's LengthDelimitedCodec do:
// LengthOffset bytes come before the length field, and the bytes after it
// are the length plus LengthAdjust.
//
//	+--------------------+--------------+-----------------------------+
//	| LengthOffset bytes | length field | length + LengthAdjust bytes |
//	+--------------------+--------------+-----------------------------+
//
// A frame, as [Reader.ReadFrame] returns it and [Writer.WriteFrame] takes
// it, is those bytes without the length field, so a handler sees a
// protocol's other header fields and the writer fills in the length. For
// zinx's packets (msgID u32, length u32 big-endian, data), Format{
// LengthOffset: 4, BigEndian: true} turns
//
//	00 00 00 01  00 00 00 04  70 69 6e 67
//
// into the frame 00 00 00 01 70 69 6e 67. MaxFrameSize bounds the frame so
// defined; a length adjusted below zero is [ErrInvalidLength], found from
// the header alone. The layouts of zinx, easytcp, gRPC, HTTP/2, MySQL and
// TLS are one-line Formats, listed on [Format].
//
// # Entry points
//
//   - [Encode], [Decode] and [AppendFrame] turn one message into one frame
//     and back. [Reader] and [Writer] stream frames with few system calls
//     and no allocation per frame.
//   - [Conn] reads and writes whole frames on a [net.Conn]; any number of
//     goroutines may write to it at once.
//   - [Server] accepts connections and calls a [Handler] for every frame,
//     with the lifecycle of net/http's Server: Serve, Shutdown, Close.
//   - [Mux] is a Handler that routes each frame by a key read from it (a
//     message ID), as net/http's ServeMux routes by path; a [Middleware]
//     wraps a route or the whole Mux. [Conn.WriteFrameParts] sends a reply
//     made of the request's header fields and a new body without copying
//     them together.
//   - [Dial] connects a [Client], which sends, receives, and makes
//     pipelined requests. A [Redialer] is a client that dials again when
//     its connection ends, over several addresses, and sends each request
//     at most once ([ErrNotSent], [ErrOutcomeUnknown]).
//   - [UDPServer] answers datagrams (it echoes them by default) and
//     [ExchangeUDP] sends one and waits for the reply; the httpx
//     subpackage has a server and a client with limits set for HTTP.
//
// # Limits
//
// Every reader has a limit on the frame size, and the memory a frame costs
// follows the bytes that actually arrive, not the length its header claims:
// a peer that announces 4 MiB and sends 10 bytes costs about 10 bytes plus
// a bounded chunk. A [Conn] bounds the bytes queued for writing, so a slow
// peer blocks its writers instead of growing memory. A [Server] bounds the
// time a frame may take to arrive, the idle time between frames, the time a
// write may take, and the number of connections. [Probes], off by
// default, find a peer that has gone silent, on a Server and on a Client:
// any byte received is proof of life.
package framed
