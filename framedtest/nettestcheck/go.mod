module github.com/framed-go/framed/framedtest/nettestcheck

go 1.26.0

replace github.com/framed-go/framed => ../..

require (
	github.com/framed-go/framed v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.63.0
)
