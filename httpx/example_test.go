package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/framed-go/framed/httpx"
)

// Get returns the body of a 2xx response and a *StatusError for any other.
func ExampleGet() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello, world")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, httpx.NewServer("", mux), ln) }()
	defer func() {
		stop()
		<-served
	}()
	base := "http://" + ln.Addr().String()

	body, err := httpx.Get(ctx, base+"/hello")
	fmt.Printf("%s %v\n", body, err)

	_, err = httpx.Get(ctx, base+"/nowhere")
	var se *httpx.StatusError
	if errors.As(err, &se) {
		fmt.Printf("%d %q\n", se.StatusCode, se.Body)
	}
	// Output:
	// hello, world <nil>
	// 404 "404 page not found\n"
}

// ListenAndServe serves until its context ends, then lets requests in
// flight finish; a clean stop returns nil.
func ExampleListenAndServe() {
	ctx, stop := context.WithCancel(context.Background())
	stop() // a program would stop on a signal, e.g. with signal.NotifyContext
	err := httpx.ListenAndServe(ctx, "127.0.0.1:0", http.NotFoundHandler())
	fmt.Println(err)
	// Output: <nil>
}
