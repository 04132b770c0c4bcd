package protocol_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestDocsShowGoldenExamples keeps docs/protocol.md in step with the golden
// files: every golden example must appear there as a JSON block.
func TestDocsShowGoldenExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatalf("read protocol document: %v", err)
	}
	var blocks [][]byte
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1) {
		var b bytes.Buffer
		if err := json.Compact(&b, m[1]); err != nil {
			t.Errorf("docs/protocol.md has a JSON block that does not parse: %v\n%s", err, m[1])
			continue
		}
		blocks = append(blocks, b.Bytes())
	}
	for _, g := range goldens {
		var want bytes.Buffer
		if err := json.Compact(&want, readFile(t, g.file)); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, b := range blocks {
			found = found || bytes.Equal(b, want.Bytes())
		}
		if !found {
			t.Errorf("docs/protocol.md does not show testdata/%s; paste it in as a json block", g.file)
		}
	}
}
