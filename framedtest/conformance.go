package framedtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed"
)

// DefaultCaseTimeout bounds each conformance case when
// [ConformanceOptions].Timeout is zero.
const DefaultCaseTimeout = 10 * time.Second

// Level says how binding a conformance case is.
type Level int

const (
	// Required cases state the contract: a server that fails one loses,
	// corrupts or mixes up frames, or can be stopped by one peer.
	Required Level = iota + 1
	// Recommended cases state what a robust server does, where a server
	// that does otherwise is still correct.
	Recommended
)

// String returns "required" or "recommended".
func (l Level) String() string {
	switch l {
	case Required:
		return "required"
	case Recommended:
		return "recommended"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// MarshalText writes the level as [Level.String] does.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Status is the outcome of one conformance case.
type Status string

// The outcomes of a conformance case. A case is skipped when the Format
// cannot express what it sends (a negative length in an unsigned header,
// a length above what the header holds).
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// ConformanceCase is one numbered check of the battery that [Conformance]
// and cmd/framedspec run against an echo server.
type ConformanceCase struct {
	ID     string // "2.3": section, then case
	Title  string // what a passing server does
	Level  Level
	Reason string // why the case has its level

	run func(e *env) error
}

// ConformanceOptions describes the server under test and which cases run.
// The zero value runs every case against a server of the default Format.
type ConformanceOptions struct {
	// Format is the server's wire format, any that framed speaks. Its
	// Limit is taken as the server's largest frame: the cases send frames
	// of exactly the limit and of one byte more. With LengthOffset or a
	// positive LengthAdjust, a frame begins with header fields besides
	// the length (a message ID, a type); the cases fill them with a
	// pattern that depends on the frame, expect them echoed unchanged,
	// and count the sizes they name (an empty frame, one of 255 bytes)
	// after them.
	Format framed.Format

	// Timeout bounds each case. Zero means [DefaultCaseTimeout]. A case
	// that waits for something that does not come fails when it ends.
	Timeout time.Duration

	// Only, when not empty, runs only these cases; Skip leaves these out.
	// Each entry is a case ID ("2.3") or a section ("2").
	Only, Skip []string
}

// ConformanceResult is the outcome of one case.
type ConformanceResult struct {
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	Level    Level         `json:"level"`
	Reason   string        `json:"reason"`
	Status   Status        `json:"status"`
	Detail   string        `json:"detail,omitempty"` // why it failed or was skipped; what it measured
	Duration time.Duration `json:"duration_ns"`
}

// ConformanceCases returns the battery, in order. Each case is run against
// an echo server: every frame it receives comes back as one frame with the
// same payload, on the same connection, in order.
func ConformanceCases() []ConformanceCase {
	return cases()
}

// SelectCases returns the cases of ConformanceCases that opts.Only and
// opts.Skip select, or an error naming an entry that matches no case.
func SelectCases(opts ConformanceOptions) ([]ConformanceCase, error) {
	all := cases()
	matches := func(c ConformanceCase, sel string) bool {
		return c.ID == sel || strings.HasPrefix(c.ID, sel+".")
	}
	for _, sel := range append(append([]string(nil), opts.Only...), opts.Skip...) {
		found := false
		for _, c := range all {
			found = found || matches(c, sel)
		}
		if !found {
			return nil, fmt.Errorf("framedtest: no conformance case or section %q", sel)
		}
	}
	var out []ConformanceCase
	for _, c := range all {
		keep := len(opts.Only) == 0
		for _, sel := range opts.Only {
			keep = keep || matches(c, sel)
		}
		for _, sel := range opts.Skip {
			keep = keep && !matches(c, sel)
		}
		if keep {
			out = append(out, c)
		}
	}
	return out, nil
}

// RunConformance runs the selected cases, one after another, against the
// echo server at the TCP address addr, and calls report (if not nil) with
// each result as it comes. It returns every result, or an error if opts
// selects nothing valid, its Format is invalid (an error matching
// [framed.ErrInvalidFormat]), or ctx ends.
func RunConformance(ctx context.Context, addr string, opts ConformanceOptions, report func(ConformanceResult)) ([]ConformanceResult, error) {
	if err := checkFormat(opts.Format); err != nil {
		return nil, err
	}
	selected, err := SelectCases(opts)
	if err != nil {
		return nil, err
	}
	var results []ConformanceResult
	for _, c := range selected {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r := runCase(ctx, addr, opts, c)
		if report != nil {
			report(r)
		}
		results = append(results, r)
	}
	return results, nil
}

// checkFormat reports whether framed accepts f: nil, or an error matching
// [framed.ErrInvalidFormat]. framed checks a Format wherever work starts;
// a Reader of an empty stream reports that check's error or io.EOF.
func checkFormat(f framed.Format) error {
	_, err := framed.NewReader(strings.NewReader(""), f).ReadFrame()
	if errors.Is(err, framed.ErrInvalidFormat) {
		return err
	}
	return nil
}

func runCase(ctx context.Context, addr string, opts ConformanceOptions, c ConformanceCase) ConformanceResult {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCaseTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := opts.Format
	fields := f.LengthOffset + max(f.LengthAdjust, 0)
	e := &env{ctx: ctx, addr: addr, f: f, fields: fields, limit: f.Limit() - fields, timeout: timeout}
	start := time.Now()
	err := c.run(e)
	e.closeAll()
	r := ConformanceResult{ID: c.ID, Title: c.Title, Level: c.Level, Reason: c.Reason, Duration: time.Since(start)}
	var skip skipError
	switch {
	case err == nil:
		r.Status, r.Detail = Pass, e.note
	case errors.As(err, &skip):
		r.Status, r.Detail = Skip, string(skip)
	default:
		r.Status, r.Detail = Fail, err.Error()
	}
	return r
}

// Conformance runs the conformance battery against the echo server at addr,
// each case as a subtest named by its ID. A required case that fails fails
// the test; a recommended one that fails is logged. Cases the Format cannot
// express are skipped. An invalid Format fails the test at once.
//
//	srv := framedtest.NewServer(nil)
//	defer srv.Close()
//	framedtest.Conformance(t, srv.Addr, framedtest.ConformanceOptions{})
func Conformance(t *testing.T, addr string, opts ConformanceOptions) {
	t.Helper()
	if err := checkFormat(opts.Format); err != nil {
		t.Fatal(err)
	}
	selected, err := SelectCases(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range selected {
		t.Run(c.ID, func(t *testing.T) {
			r := runCase(t.Context(), addr, opts, c)
			switch {
			case r.Status == Skip:
				t.Skipf("%s %s: %s", c.ID, c.Title, r.Detail)
			case r.Status == Fail && c.Level == Required:
				t.Errorf("%s %s (required: %s):\n%s", c.ID, c.Title, c.Reason, r.Detail)
			case r.Status == Fail:
				t.Logf("%s %s (recommended, not met):\n%s", c.ID, c.Title, r.Detail)
			}
		})
	}
}

// skipError is a case's way to say it does not apply to the Format.
type skipError string

func (s skipError) Error() string { return string(s) }

// env is what a running case uses: the address, the Format, a deadline,
// and the connections to close when it ends.
type env struct {
	ctx     context.Context
	addr    string
	f       framed.Format
	fields  int // the bytes of header fields that begin each frame (see fieldsFor)
	limit   int // the largest payload after those fields
	timeout time.Duration
	note    string // what a passing case reports

	conns []net.Conn
}

// dial connects to the server; the connection's deadline is the case's.
func (e *env) dial() (*net.TCPConn, error) {
	var d net.Dialer
	c, err := d.DialContext(e.ctx, "tcp", e.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	e.conns = append(e.conns, c)
	dl, _ := e.ctx.Deadline()
	c.SetDeadline(dl)
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(true)
	return tc, nil
}

func (e *env) closeAll() {
	for _, c := range e.conns {
		c.Close()
	}
}
