package readme_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/framed-go/framed/examples/internal/readme"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "copy the programs into the READMEs' blocks instead of comparing")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const root = "../../.." // the repository, from this directory

// TestREADMEShowsThePrograms checks that every Go block of the READMEs
// names its program and equals it.
func TestREADMEShowsThePrograms(t *testing.T) {
	read := func(program string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(program)))
		return string(b), err
	}
	for _, name := range []string{"README.md", "README.zh-CN.md"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(root, name)
			md, err := os.ReadFile(path)
			require.NoError(t, err)
			if *update {
				updated, err := readme.Replace(string(md), read)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(path, []byte(updated), 0o644))
				md = []byte(updated)
			}
			blocks, err := readme.Blocks(string(md))
			require.NoError(t, err)
			require.NotEmpty(t, blocks, "%s shows Go code", name)
			for _, b := range blocks {
				if b.Test != "" {
					// A test shown in part: the test file must hold it as
					// shown, and that package's tests run it.
					assert.True(t, strings.HasSuffix(b.Test, "_test.go"), "%s:%d: %s is not a test file", name, b.Line, b.Test)
					file, err := read(b.Test)
					if assert.NoError(t, err, "%s:%d", name, b.Line) {
						assert.Contains(t, file, b.Text, "%s:%d is not in %s as shown", name, b.Line, b.Test)
					}
					continue
				}
				if !assert.NotEmpty(t, b.Program, "%s:%d: a Go block with no <!-- program: PATH --> or <!-- test: PATH --> line before it", name, b.Line) {
					continue
				}
				assert.True(t, strings.HasPrefix(b.Program, "examples/internal/readme/"), "%s:%d: %s is not a program this package tests", name, b.Line, b.Program)
				want, err := read(b.Program)
				if assert.NoError(t, err, "%s:%d", name, b.Line) {
					assert.Equal(t, want, b.Text, "%s:%d differs from %s; edit the program, then run go test ./examples/internal/readme -update", name, b.Line, b.Program)
				}
			}
		})
	}
}

func TestBlocksAndReplace(t *testing.T) {
	md := "# t\n\n<!-- program: a/main.go -->\n```go\nold a\n```\n\n```sh\nls\n```\n\n```go\nloose\n```\n<!-- program: b/main.go -->\n```go\nold b\nmore\n```\nend\n"
	blocks, err := readme.Blocks(md)
	require.NoError(t, err)
	assert.Equal(t, []readme.Block{
		{Program: "a/main.go", Line: 4, Text: "old a\n"},
		{Program: "", Line: 12, Text: "loose\n"},
		{Program: "b/main.go", Line: 16, Text: "old b\nmore\n"},
	}, blocks)

	got, err := readme.Replace(md, func(p string) (string, error) { return "new " + p + "\n", nil })
	require.NoError(t, err)
	assert.Equal(t, "# t\n\n<!-- program: a/main.go -->\n```go\nnew a/main.go\n```\n\n```sh\nls\n```\n\n```go\nloose\n```\n<!-- program: b/main.go -->\n```go\nnew b/main.go\n```\nend\n", got)

	_, err = readme.Blocks("```go\nnever closed\n")
	assert.Error(t, err)
}
