package framed

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests hold Format's doc to the code: what it says a Format may
// not be, and the layouts it shows, which README shows too.

// parsedFormatGo is format.go's syntax tree.
func parsedFormatGo(t *testing.T) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "format.go", nil, parser.ParseComments)
	require.NoError(t, err)
	return f
}

// formatDoc returns the doc comment of type Format, as go doc prints it.
func formatDoc(t *testing.T, f *ast.File) string {
	t.Helper()
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE && len(g.Specs) == 1 {
			if g.Specs[0].(*ast.TypeSpec).Name.Name == "Format" {
				return g.Doc.Text()
			}
		}
	}
	require.FailNow(t, "format.go declares no type Format")
	return ""
}

// checkRefusals returns, for each way Format.check refuses a Format, a
// pattern that its error message matches.
func checkRefusals(t *testing.T, f *ast.File) []*regexp.Regexp {
	t.Helper()
	var check *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "check" && fd.Recv != nil {
			check = fd
		}
	}
	require.NotNil(t, check, "format.go declares Format.check")
	var refusals []*regexp.Regexp
	ast.Inspect(check.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 2 {
			return true
		}
		if id, ok := call.Args[1].(*ast.Ident); !ok || id.Name != "ErrInvalidFormat" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		require.True(t, ok, "check's refusals have literal messages")
		msg, err := strconv.Unquote(lit.Value)
		require.NoError(t, err)
		pattern := regexp.QuoteMeta(msg)
		pattern = strings.ReplaceAll(pattern, "%w", regexp.QuoteMeta(ErrInvalidFormat.Error()))
		pattern = strings.ReplaceAll(pattern, "%d", `-?\d+`)
		refusals = append(refusals, regexp.MustCompile("^"+pattern+"$"))
		return true
	})
	return refusals
}

// TestFormatDocNamesEveryRefusal: every way Format.check refuses a Format
// is named in Format's doc. A refusal added to check without a case here
// fails the test, and so does a case whose words are not in the doc.
func TestFormatDocNamesEveryRefusal(t *testing.T) {
	tests := []struct {
		give Format
		doc  string // the words of Format's doc that name the refusal
	}{
		{Format{MaxFrameSize: -1}, "MaxFrameSize is negative"},
		{Format{LengthOffset: 4, LengthAdjust: 2, MaxFrameSize: 5}, "MaxFrameSize is negative, or below the bytes of the header fields (LengthOffset, plus LengthAdjust when it is positive)"},
		{Format{Varint: true, HeaderSize: 2}, "Varint is set with a HeaderSize"},
		{Format{LengthOffset: maxLengthOffset + 1}, "LengthOffset is outside 0 to " + strconv.Itoa(maxLengthOffset)},
		{Format{LengthOffset: -1}, "LengthOffset is outside 0 to " + strconv.Itoa(maxLengthOffset)},
		{Format{LengthAdjust: math.MaxInt32 + 1}, "LengthAdjust is beyond ±(2³¹-1)"},
		{Format{LengthAdjust: math.MinInt32}, "LengthAdjust is beyond ±(2³¹-1)"},
		{Format{HeaderSize: 5}, "HeaderSize is not 0, 1, 2, 3, 4 or 8"},
		{Format{HeaderSize: 1, LengthAdjust: -256}, "a negative LengthAdjust leaves no length that the field can hold"},
	}
	require.Equal(t, math.MaxInt32, maxLengthAdjust, "the doc's ±(2³¹-1)")
	src := parsedFormatGo(t)
	doc := strings.Join(strings.Fields(formatDoc(t, src)), " ")
	refusals := checkRefusals(t, src)
	require.NotEmpty(t, refusals)
	named := make([]bool, len(refusals))
	for _, tt := range tests {
		err := tt.give.check()
		require.ErrorIs(t, err, ErrInvalidFormat, "%+v", tt.give)
		matched := false
		for i, re := range refusals {
			if re.MatchString(err.Error()) {
				named[i], matched = true, true
			}
		}
		assert.True(t, matched, "%+v: %q is none of check's refusals", tt.give, err)
		assert.True(t, strings.Contains(doc, tt.doc), "Format's doc does not say %q, which %+v breaks", tt.doc, tt.give)
	}
	for i, re := range refusals {
		assert.True(t, named[i], "check's refusal %q has no case here, so no words in Format's doc", re)
	}
}

// formatLiteral returns the Format that a literal such as
// "Format{HeaderSize: 3, MaxFrameSize: 16384 + 6}" describes; its values
// are constant expressions.
func formatLiteral(t *testing.T, src string) Format {
	t.Helper()
	e, err := parser.ParseExpr(src)
	require.NoError(t, err, "%s", src)
	lit, ok := e.(*ast.CompositeLit)
	require.True(t, ok, "%s is a composite literal", src)
	var f Format
	v := reflect.ValueOf(&f).Elem()
	for _, elt := range lit.Elts {
		kv := elt.(*ast.KeyValueExpr)
		name := kv.Key.(*ast.Ident).Name
		field := v.FieldByName(name)
		require.True(t, field.IsValid(), "%s: Format has no field %s", src, name)
		value := src[kv.Value.Pos()-1 : kv.Value.End()-1]
		tv, err := types.Eval(token.NewFileSet(), nil, token.NoPos, value)
		require.NoError(t, err, "%s: %s", src, value)
		switch field.Kind() {
		case reflect.Bool:
			field.SetBool(constant.BoolVal(tv.Value))
		case reflect.Int:
			n, exact := constant.Int64Val(tv.Value)
			require.True(t, exact, "%s: %s", src, value)
			field.SetInt(n)
		default:
			require.FailNow(t, "unexpected field kind", "%s: %s", src, name)
		}
	}
	return f
}

// layoutKey names a protocol in a layout list by its first word, so that
// "HTTP/2 (length u24 BE, 6 bytes)" and "HTTP/2 frame" are one.
func layoutKey(name string) string {
	w := strings.Fields(strings.Trim(name, " |"))
	if len(w) == 0 {
		return ""
	}
	return strings.ToLower(w[0])
}

var formatLiteralRE = regexp.MustCompile(`Format\{[^}]*\}`)

// TestFormatLayoutsAgreeWithREADME: every layout in Format's doc is in
// README's table with the same Format, and every Format either shows is
// valid.
func TestFormatLayoutsAgreeWithREADME(t *testing.T) {
	docLayouts := map[string]string{}
	for _, line := range strings.Split(formatDoc(t, parsedFormatGo(t)), "\n") {
		if !strings.HasPrefix(line, "\t") {
			continue
		}
		lit := formatLiteralRE.FindString(line)
		if lit == "" {
			continue
		}
		docLayouts[layoutKey(line[:strings.Index(line, lit)])] = lit
	}
	require.GreaterOrEqual(t, len(docLayouts), 5, "the layouts in Format's doc")

	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readmeLayouts := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| ") || !strings.Contains(line, "`framed.Format{") {
			continue
		}
		cells := strings.Split(line, "|")
		lit := formatLiteralRE.FindString(line)
		readmeLayouts[layoutKey(cells[1])] = lit
	}
	require.GreaterOrEqual(t, len(readmeLayouts), len(docLayouts), "the layouts in README's table")

	for key, lit := range docLayouts {
		assert.Equal(t, readmeLayouts[key], lit, "layout %q: README's Format and Format's doc", key)
	}
	for key, lit := range readmeLayouts {
		if _, ok := docLayouts[key]; !ok {
			t.Logf("layout %q is in README only", key)
		}
		assert.NoError(t, formatLiteral(t, lit).check(), "README's layout %q: %s", key, lit)
	}
	for key, lit := range docLayouts {
		assert.NoError(t, formatLiteral(t, lit).check(), "Format's doc layout %q: %s", key, lit)
	}
}
