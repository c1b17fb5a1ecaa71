// Package readme keeps the Go code shown in README.md and README.zh-CN.md
// honest. Every ```go block in them is the whole text of a program in a
// directory below this one, named by the HTML comment on the line before
// the block:
//
//	<!-- program: examples/internal/readme/hello/main.go -->
//
// Each program is built and run by its own test, which checks what it
// prints, and this package's test checks that each README block equals its
// program, byte for byte. To change a snippet, edit the program, run its
// test, then copy it into the READMEs with
//
//	go test ./examples/internal/readme -update
package readme

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Block is a ```go block of a markdown file.
type Block struct {
	Program string // the path, from the repository's root, of the program it shows
	Test    string // or of the test file it is a part of, which that package's own test keeps in step
	Line    int    // the line of its opening fence, from 1
	Text    string // what is between the fences, with a final newline
}

var (
	programMark = regexp.MustCompile(`^<!-- program: (\S+) -->$`)
	testMark    = regexp.MustCompile(`^<!-- test: (\S+) -->$`)
)

// Blocks returns the ```go blocks of markdown, in order. A block without a
// program comment on the line before it has an empty Program.
func Blocks(markdown string) ([]Block, error) {
	var (
		blocks []Block
		prev   string
		in     *Block
	)
	for i, line := range strings.SplitAfter(markdown, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case in != nil && trimmed == "```":
			blocks = append(blocks, *in)
			in = nil
		case in != nil:
			in.Text += line
		case trimmed == "```go":
			in = &Block{Line: i + 1}
			if m := programMark.FindStringSubmatch(prev); m != nil {
				in.Program = m[1]
			}
			if m := testMark.FindStringSubmatch(prev); m != nil {
				in.Test = m[1]
			}
		}
		prev = trimmed
	}
	if in != nil {
		return nil, fmt.Errorf("the ```go block of line %d is not closed", in.Line)
	}
	return blocks, nil
}

// Replace returns markdown with the text of every block that names a
// program set to read(program).
func Replace(markdown string, read func(program string) (string, error)) (string, error) {
	blocks, err := Blocks(markdown)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(markdown, "\n")
	var out strings.Builder
	next := 0 // the line, from 0, to copy next
	for _, b := range blocks {
		if b.Program == "" {
			continue
		}
		text, err := read(b.Program)
		if err != nil {
			return "", err
		}
		open := b.Line - 1
		end := open + 1 + strings.Count(b.Text, "\n") // the closing fence
		out.WriteString(strings.Join(lines[next:open+1], ""))
		out.WriteString(text)
		next = end
	}
	out.WriteString(strings.Join(lines[next:], ""))
	return out.String(), nil
}

var printComment = regexp.MustCompile(`(?m)^\s*fmt\.Print[a-z]*\(.*\) // (.+)$`)

// CheckPrints runs a README program's main, which must print one line,
// and checks that the line is what the comment on its fmt.Print call says,
// as a reader of the README expects: `fmt.Printf("%s\n", reply) // HELLO`
// must print HELLO.
func CheckPrints(t *testing.T, main func()) {
	t.Helper()
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	m := printComment.FindSubmatch(src)
	require.NotNil(t, m, "main.go has a fmt.Print call with a comment saying what it prints")
	want := string(m[1]) + "\n"

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = stdout }()
		main()
	}()
	require.NoError(t, w.Close())
	got, err := io.ReadAll(bufio.NewReader(r))
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "what main printed, against its comment")
}
