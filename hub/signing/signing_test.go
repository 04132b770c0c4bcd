package signing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

var update = flag.Bool("update", false, "rewrite testdata/signing.json")

func TestOpenRotate(t *testing.T) {
	dir := t.TempDir()
	k, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	pub1, kid1, serial1 := k.Current()
	if serial1 != 1 || kid1 != protocol.KeyID(pub1) {
		t.Fatalf("first key: kid %s serial %d", kid1, serial1)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _ := again.Current(); !p.Equal(pub1) {
		t.Fatal("reopening changed the key")
	}

	link, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	pub2, kid2, serial2 := k.Current()
	if serial2 != 2 || kid2 == kid1 || link.KID != kid2 {
		t.Fatalf("after rotate: kid %s serial %d link %+v", kid2, serial2, link)
	}
	newest, serial, err := k.Chain().Advance(pub1)
	if err != nil || !newest.Equal(pub2) || serial != 2 {
		t.Fatalf("Advance from the old key: %v serial %d, %v", newest, serial, err)
	}
	msg, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeAck, time.Now(),
		protocol.Ack{Ref: protocol.NewID(), Status: protocol.AckStored}, k.Signer())
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.DecodeEnvelope(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyEnvelope(env, pub2); err != nil {
		t.Errorf("signed with the new key: %v", err)
	}
	if err := protocol.VerifyEnvelope(env, pub1); err == nil {
		t.Error("the old key verifies a message signed after rotation")
	}
	reopened, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, s := reopened.Current(); !p.Equal(pub2) || s != 2 {
		t.Errorf("after reopen: serial %d, want the rotated key", s)
	}
}

func TestChainFull(t *testing.T) {
	k, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for range protocol.MaxKeyLinks - 1 {
		if _, err := k.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	before, _, serial := k.Current()
	if _, err := k.Rotate(); !errors.Is(err, ErrChainFull) {
		t.Fatalf("rotate a full chain: %v, want ErrChainFull", err)
	}
	if after, _, s := k.Current(); !after.Equal(before) || s != serial {
		t.Error("a refused rotation changed the key")
	}
}

// TestWriteTestdata keeps testdata/signing.json, a valid two-link key file
// (a test key, used nowhere else) that seeds the fuzz test.
func TestWriteTestdata(t *testing.T) {
	path := filepath.Join("testdata", FileName)
	if !*update {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		return
	}
	dir := t.TempDir()
	k, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseCorrupt(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Parse(good); err != nil {
		t.Fatalf("testdata: %v", err)
	}
	mut := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	links := func(m map[string]any) []any { return m["chain"].(map[string]any)["links"].([]any) }
	otherSeed := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("key")},
		{"too large", append(good, strings.Repeat(" ", MaxFileSize)...)},
		{"trailing data", append(good, "{}"...)},
		{"unknown field", mut(func(m map[string]any) { m["old_keys"] = []any{} })},
		{"wrong version", mut(func(m map[string]any) { m["version"] = 2 })},
		{"key not base64", mut(func(m map[string]any) { m["key"] = "!!" })},
		{"key too short", mut(func(m map[string]any) { m["key"] = "AAAA" })},
		{"key is not the newest", mut(func(m map[string]any) { m["key"] = otherSeed })},
		{"chain empty", mut(func(m map[string]any) { m["chain"] = map[string]any{"links": []any{}} })},
		{"handover not signed by the previous key", mut(func(m map[string]any) {
			links(m)[1].(map[string]any)["sig"] = base64.StdEncoding.EncodeToString(make([]byte, 64))
		})},
		{"first link dropped", mut(func(m map[string]any) {
			m["chain"].(map[string]any)["links"] = links(m)[1:]
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Parse(tc.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse: %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, err := os.ReadFile(filepath.Join("testdata", FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		priv, chain, err := Parse(data)
		if err != nil {
			return
		}
		first, err := protocol.DecodeKey(chain.Links[0].Key)
		if err != nil {
			t.Fatalf("accepted a chain whose first key does not decode: %v", err)
		}
		newest, _, err := chain.Advance(first)
		if err != nil || !newest.Equal(pubOf(priv)) {
			t.Fatalf("accepted an inconsistent key file: %v", err)
		}
	})
}
