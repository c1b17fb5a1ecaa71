package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/internal/formatflag"
)

// config is a parsed, checked command line.
type config struct {
	addr    string // connect mode's HOST:PORT
	listen  string // -l ADDR
	req     string // -req HOST:PORT
	echo    bool
	format  framed.Format
	in, out string // encodings
	file    string
	n       int
	timeout time.Duration
	verbose bool
	tls     tlsFlags
	probes  framed.Probes // -l and -req
}

const usageText = `framecat sends and receives length-prefixed frames over TCP: nc that knows frames.

Usage:
  framecat [flags] HOST:PORT        connect: send every input message as a frame,
                                    print every frame received; when the input
                                    ends, half-close and wait for the peer to close
  framecat [flags] -req HOST:PORT   send one input message, print one reply, exit
  framecat [flags] -l ADDR          listen: print every frame received and answer it
                                    with the next input message (none once the
                                    input has ended), or with itself (-echo)

Input is stdin, or -f FILE; output is stdout; diagnostics go to stderr.
Encodings (-enc for both, or -in and -out):
  text    one message per line
  hex     one message per line in hex, spaces allowed: 68656c6c6f or 68 65 6c 6c 6f
  base64  one message per line in standard base64
  json    one object per line: {"len":5,"data":"aGVsbG8="} (data in base64)
  raw     frames of the format below, as on the wire (to sit in a pipe)

The format flags (-size, -be, -varint, -offset, -adjust, -max) describe
the frame header; without them it is a 4-byte little-endian length, and
frames are at most 4 MiB, not counting that length.

Exit status: 0 on success, 1 on a network, protocol or input error,
2 on a usage error.

Flags:
`

var encodings = []string{"text", "hex", "base64", "json", "raw"}

// parseArgs parses and checks args. Flags may come before or after the
// address. A usage error is a *usageError; -h prints the usage to stderr
// and returns flag.ErrHelp.
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("framecat", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, by the caller
	fs.Usage = func() {}
	fs.StringVar(&cfg.listen, "l", "", "listen on `ADDR` (host:port; port 0 picks a free one, printed on stderr)")
	fs.StringVar(&cfg.req, "req", "", "send one message to `HOST:PORT`, print one reply and exit")
	fs.BoolVar(&cfg.echo, "echo", false, "with -l: answer every frame with itself")
	enc := fs.String("enc", "text", "input and output encoding `ENC`: "+strings.Join(encodings, ", "))
	fs.StringVar(&cfg.in, "in", "", "input encoding `ENC` (default: -enc)")
	fs.StringVar(&cfg.out, "out", "", "output encoding `ENC` (default: -enc)")
	fs.StringVar(&cfg.file, "f", "", "read the input from `FILE` instead of stdin")
	fs.IntVar(&cfg.n, "n", 0, "stop after `N` frames received (0: no limit)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "longest wait for the peer: to connect, for a reply (-req), for each frame once the\ninput has ended, for a frame to arrive once begun or a write (-l); 0: no limit")
	fs.BoolVar(&cfg.verbose, "v", false, "log connections and frame sizes on stderr")
	cfg.tls.register(fs)
	fs.DurationVar(&cfg.probes.Idle, "probe-idle", 0, "with -l or -req: send a probe frame to a peer silent for this long, and drop it\nif it then stays silent for -probe-timeout (0: no probes)")
	fs.DurationVar(&cfg.probes.Timeout, "probe-timeout", 0, "with -probe-idle: how long a probed peer may stay silent (0: -probe-idle)")
	probeFrame := fs.String("probe-frame", "", "with -probe-idle: the probe frame's payload in `HEX` (default: an empty frame)")
	formatFlags := formatflag.Register(fs)

	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, usageText)
				fs.SetOutput(stderr)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}

	if len(pos) > 1 {
		return nil, usagef("unexpected argument %q", pos[1])
	}
	if len(pos) == 1 {
		cfg.addr = pos[0]
	}
	modes := 0
	for _, a := range []string{cfg.addr, cfg.listen, cfg.req} {
		if a != "" {
			modes++
		}
	}
	switch {
	case modes == 0:
		return nil, usagef("need HOST:PORT, -req HOST:PORT or -l ADDR")
	case modes > 1 && cfg.addr != "":
		return nil, usagef("unexpected argument %q with -l or -req", cfg.addr)
	case modes > 1:
		return nil, usagef("-l and -req cannot be used together")
	case cfg.echo && cfg.listen == "":
		return nil, usagef("-echo is for listen mode (-l)")
	case cfg.n < 0:
		return nil, usagef("-n must not be negative")
	case cfg.n > 0 && cfg.req != "":
		return nil, usagef("-req prints one reply; -n is for the other modes")
	case cfg.timeout < 0:
		return nil, usagef("-timeout must not be negative")
	case cfg.probes.Idle < 0 || cfg.probes.Timeout < 0:
		return nil, usagef("-probe-idle and -probe-timeout must not be negative")
	case cfg.probes.Idle > 0 && cfg.addr != "":
		return nil, usagef("-probe-idle is for -l and -req")
	case cfg.probes.Idle == 0 && (cfg.probes.Timeout != 0 || *probeFrame != ""):
		return nil, usagef("-probe-timeout and -probe-frame need -probe-idle")
	}
	if *probeFrame != "" {
		p, err := hex.DecodeString(strings.ReplaceAll(*probeFrame, " ", ""))
		if err != nil {
			return nil, usagef("-probe-frame: %v", err)
		}
		cfg.probes.Frame = p
	}
	if cfg.in == "" {
		cfg.in = *enc
	}
	if cfg.out == "" {
		cfg.out = *enc
	}
	for _, e := range []string{*enc, cfg.in, cfg.out} {
		if !slices.Contains(encodings, e) {
			return nil, usagef("unknown encoding %q: want one of %s", e, strings.Join(encodings, ", "))
		}
	}
	f, err := formatFlags.Format()
	if err != nil {
		return nil, usagef("%v", err)
	}
	cfg.format = f
	if err := cfg.tls.check(cfg.listen != ""); err != nil {
		return nil, err
	}
	return cfg, nil
}
