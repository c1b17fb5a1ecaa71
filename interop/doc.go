// Package interop holds framed's interoperability tests against the real
// implementations of the layouts a [framed.Format] describes: zinx v1.2.6
// and easytcp v0.3.2 servers and clients, Netty 4.1's
// LengthFieldBasedFrameDecoder (from Debian's libnetty-java), the HTTP/2
// framer of golang.org/x/net/http2, go-sql-driver/mysql's packets, and the
// TLS records of crypto/tls. A zinx client with a router per message ID,
// and easytcp's packer, also talk to a [framed.Mux], and the tests show
// what each side does with a message ID it has no route for: the Mux ends
// the connection after the replies owed; zinx and easytcp servers drop
// the frame.
//
// It is a module of its own so that the root module's dependencies stay as
// they are. Run it with
//
//	cd interop && go test ./...
//
// The Netty tests need java and /usr/share/java/netty-all.jar; without
// them they fail, saying what is missing, unless FRAMED_INTEROP_NO_JAVA=1
// is set.
package interop

import _ "github.com/framed-go/framed" // the module under test
