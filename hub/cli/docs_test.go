package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestServeFlagsDocumented: every flag of hub serve is in the flag tables
// of docs/operations.md (which also document the agent's and kiosk's).
func TestServeFlagsDocumented(t *testing.T) {
	var out bytes.Buffer
	_ = Run(context.Background(), []string{"serve", "-h"}, strings.NewReader(""), &out, slog.New(slog.DiscardHandler), Options{})
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("found %d flags in hub serve -h; the usage format changed?\n%s", len(flags), out.String())
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for f := range flags {
		if !documented[f] {
			t.Errorf("hub serve -%s is not in docs/operations.md's flag table", f)
		}
	}
}
