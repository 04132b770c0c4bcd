package protocol_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

var updateSigned = flag.Bool("update-signed", false, "rewrite the signed golden files (downlink messages, key chain, enrolment) from their bodies")

// testKey returns a fixed ed25519 key; key 1 signs the downlink golden files.
func testKey(n int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "shequ protocol test key %d", n))
	return ed25519.NewKeyFromSeed(seed[:])
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// writeSigned writes a signed envelope with its compact body on one line,
// since the signature covers the body's exact bytes.
func writeSigned(t *testing.T, name string, raw []byte) {
	t.Helper()
	var e protocol.Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"v\": %d,\n  \"id\": %q,\n  \"type\": %q,\n  \"ts\": %q,\n  \"body\": %s,\n  \"kid\": %q,\n  \"sig\": %q\n}\n",
		e.V, e.ID, e.Type, e.TS.UTC().Format(time.RFC3339Nano), e.Body, e.KID, e.Sig)
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSignedGoldens regenerates the signed golden files with
// -update-signed; without the flag it checks they are up to date.
func TestWriteSignedGoldens(t *testing.T) {
	for _, name := range []string{"desired.json", "update_offer.json", "ack_stored.json", "ack_duplicate.json", "ack_rejected.json"} {
		in := readFile(t, name)
		if !*updateSigned {
			var e protocol.Envelope
			if err := json.Unmarshal(in, &e); err != nil {
				t.Fatal(err)
			}
			if err := protocol.VerifyEnvelope(e, pub(testKey(1))); err != nil {
				t.Errorf("%s: %v (regenerate with -update-signed)", name, err)
			}
			continue
		}
		var e protocol.Envelope
		if err := json.Unmarshal(in, &e); err != nil {
			t.Fatal(err)
		}
		out, err := protocol.EncodeSigned(e.ID, e.Type, e.TS, json.RawMessage(compact(t, e.Body)), testKey(1))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		writeSigned(t, name, out)
	}
	if !*updateSigned {
		return
	}
	chain := protocol.KeyChain{Links: []protocol.KeyLink{
		protocol.NewKeyLink(1, pub(testKey(0)), nil),
		protocol.NewKeyLink(2, pub(testKey(1)), testKey(0)),
	}}
	out, err := protocol.EncodeSigned("019ac0f4-4000-7000-8000-00000000000a", protocol.TypeKeys, fixedTime, chain, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	writeSigned(t, "keys.json", out)

	req := protocol.EnrolRequest{ClaimCode: "402913775018", PublicKey: protocol.EncodeKey(pub(testKey(7))),
		HardwareID: "4c4c4544-0042-3510-8056-b4c04f4e4d32", SoftwareVersion: "0.1.0"}
	writeJSON(t, "enrol_request.json", req)
	writeJSON(t, "enrol_response.json", protocol.EnrolResponse{
		Kiosk: "k-sangcheng-01", Groups: []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"},
		BrokerURL: "ssl://hub.shequ.example:8883", MQTTUsername: "k-sangcheng-01",
		MQTTPassword: "qv3J0x1kq6C7bqg1oYQz9y4dM2pHn5Wc8Lk0Rr2sT4U", HubKey: protocol.EncodeKey(pub(testKey(1))),
		HubKID: protocol.KeyID(pub(testKey(1))), KeySerial: 2, CACert: string(testCA(t)), TicketFloor: 43,
	})
	writeJSON(t, "local_enrol_request.json", protocol.LocalEnrolRequest{ClaimCode: "402913775018"})
	writeMediaGoldens(t)
	writeCaseGoldens(t)
}

// writeMediaGoldens writes the golden files of protocol v3's media messages.
func writeMediaGoldens(t *testing.T) {
	video := bytes.Repeat([]byte("shequ video bytes "), 2000) // 36,000 bytes: 3 chunks of 16 KiB
	image := []byte("\x89PNG shequ poster")
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	const chunk = 16 << 10
	var chunks []string
	for off := 0; off < len(video); off += chunk {
		chunks = append(chunks, sum(video[off:min(off+chunk, len(video))]))
	}
	vid, img := sum(video), sum(image)
	from := fixedTime.Add(-24 * time.Hour)
	desired := protocol.DesiredState{
		Kiosk: "k-sangcheng-01", Version: 18,
		Station: protocol.Station{Name: "桑城社区城管执法工作室", Community: "sangcheng", CommunityName: "桑城居委"},
		Notices: []protocol.Notice{},
		Playlists: []protocol.Playlist{{
			ID: "pl-huangpu-winter", Name: "冬季安全宣传", ValidFrom: from,
			Targets: []protocol.Target{{Level: protocol.LevelDistrict, ID: "huangpu"}},
			Items: []protocol.PlaylistItem{
				{Kind: protocol.ItemVideo, Media: vid},
				{Kind: protocol.ItemImage, Media: img, DurationMS: 8000},
				{Kind: protocol.ItemNotice, Notice: "019ac0f4-0000-7000-8000-0000000000a1", DurationMS: 10000},
			},
		}},
		Media: []protocol.MediaRef{{SHA256: vid, Kind: protocol.MediaVideo, Size: int64(len(video))}, {SHA256: img, Kind: protocol.MediaImage, Size: int64(len(image))}},
	}
	out, err := protocol.EncodeSigned("019ac0f4-4000-7000-8000-00000000000b", protocol.TypeDesired, fixedTime, desired, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	writeSigned(t, "desired_media.json", out)
	manifest := protocol.Manifest{SHA256: vid, Size: int64(len(video)), ChunkSize: chunk, Chunks: chunks}
	if out, err = protocol.EncodeSigned("019ac0f4-4000-7000-8000-00000000000c", protocol.TypeManifest, fixedTime, manifest, testKey(1)); err != nil {
		t.Fatal(err)
	}
	writeSigned(t, "manifest.json", out)
	for name, m := range map[string]struct {
		typ  string
		body any
	}{
		"media_request.json": {protocol.TypeMedia, protocol.MediaRequest{SHA256: vid, Chunks: []int{1, 2}}},
		"chunk.json":         {protocol.TypeChunk, protocol.Chunk{SHA256: vid, Index: 2, Data: video[2*chunk:]}},
		"plays.json": {protocol.TypePlays, protocol.PlayStats{Kiosk: "k-sangcheng-01", Hour: fixedTime.Truncate(time.Hour), Items: []protocol.PlayCount{
			{Kind: protocol.ItemVideo, Media: vid, Count: 12, Last: fixedTime.Add(-time.Minute)},
			{Kind: protocol.ItemNotice, Notice: "019ac0f4-0000-7000-8000-0000000000a1", Count: 30, Last: fixedTime.Add(-2 * time.Minute)},
		}}},
	} {
		b, err := protocol.EncodeID("019ac0f4-4000-7000-8000-0000000000"+fmt.Sprintf("%02x", len(name)), m.typ, fixedTime, m.body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", name), append(pretty.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(t, "play_event.json", protocol.PlayEvent{Kind: protocol.ItemImage, Media: img, At: fixedTime})
}

func compact(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeJSON(t *testing.T, name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testCA makes a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Shequ hub CA (test)"},
		NotBefore: fixedTime, NotAfter: fixedTime.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestSignedEnvelope(t *testing.T) {
	body := protocol.Ack{Ref: protocol.NewID(), Status: protocol.AckRejected, Reason: "<b>&\u2028 违法</b>"}
	signed, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeAck, fixedTime, body, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	e, got, err := protocol.DecodeAck(signed)
	if err != nil {
		t.Fatalf("decode signed ack: %v", err)
	}
	if got != body {
		t.Errorf("decoded %+v, want %+v", got, body)
	}
	if err := protocol.VerifyEnvelope(e, pub(testKey(1))); err != nil {
		t.Fatalf("verify with the signing key: %v", err)
	}

	tampered := e
	tampered.Body = bytes.Replace(e.Body, []byte("rejected"), []byte("stored\x20\x20"), 1)
	unsigned := e
	unsigned.KID, unsigned.Sig = "", ""
	forged := e
	forged.KID = protocol.KeyID(pub(testKey(2)))
	cases := []struct {
		name string
		env  protocol.Envelope
		key  ed25519.PublicKey
	}{
		{"wrong key", e, pub(testKey(2))},
		{"tampered body", tampered, pub(testKey(1))},
		{"unsigned", unsigned, pub(testKey(1))},
		{"kid of another key", forged, pub(testKey(1))},
		{"no trusted key", e, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := protocol.VerifyEnvelope(c.env, c.key); !errors.Is(err, protocol.ErrSignature) {
				t.Fatalf("VerifyEnvelope = %v, want ErrSignature", err)
			}
		})
	}

	if _, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeFeedback, fixedTime, body, testKey(1)); err == nil {
		t.Error("EncodeSigned signed an uplink type")
	}
}

func TestSignatureShape(t *testing.T) {
	good, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeAck, fixedTime,
		protocol.Ack{Ref: protocol.NewID(), Status: protocol.AckStored}, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(m map[string]any)) []byte {
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
	for name, data := range map[string][]byte{
		"kid not hex":     mutate(func(m map[string]any) { m["kid"] = "ZZZZZZZZZZZZZZZZ" }),
		"kid short":       mutate(func(m map[string]any) { m["kid"] = "abcd" }),
		"sig not base64":  mutate(func(m map[string]any) { m["sig"] = "!!" }),
		"sig short":       mutate(func(m map[string]any) { m["sig"] = base64.StdEncoding.EncodeToString([]byte("short")) }),
		"sig without kid": mutate(func(m map[string]any) { delete(m, "kid") }),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := protocol.DecodeAck(data); !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("DecodeAck = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestKeyChainAdvance(t *testing.T) {
	k := []ed25519.PrivateKey{testKey(10), testKey(11), testKey(12), testKey(13)}
	chain := protocol.KeyChain{Links: []protocol.KeyLink{protocol.NewKeyLink(1, pub(k[0]), nil)}}
	for i := 1; i < len(k); i++ {
		chain.Links = append(chain.Links, protocol.NewKeyLink(int64(i+1), pub(k[i]), k[i-1]))
	}
	for i := range k {
		newest, serial, err := chain.Advance(pub(k[i]))
		if err != nil {
			t.Fatalf("advance from key %d: %v", i, err)
		}
		if !newest.Equal(pub(k[3])) || serial != 4 {
			t.Errorf("advance from key %d = %s serial %d, want key 3 serial 4", i, protocol.KeyID(newest), serial)
		}
	}

	forged := protocol.KeyChain{Links: append([]protocol.KeyLink(nil), chain.Links...)}
	forged.Links[2] = protocol.NewKeyLink(3, pub(testKey(66)), testKey(66)) // self-signed, not by key 1
	if _, _, err := forged.Advance(pub(k[0])); !errors.Is(err, protocol.ErrSignature) {
		t.Errorf("forged handover: err = %v, want ErrSignature", err)
	}
	if _, _, err := chain.Advance(pub(testKey(99))); !errors.Is(err, protocol.ErrSignature) {
		t.Errorf("untrusted start: err = %v, want ErrSignature", err)
	}
	gap := protocol.KeyChain{Links: []protocol.KeyLink{chain.Links[0], chain.Links[2]}}
	if _, _, err := gap.Advance(pub(k[0])); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("serial gap: err = %v, want ErrInvalid", err)
	}
}

func TestClaimCode(t *testing.T) {
	if got := protocol.NormalizeClaimCode("4029-1377 5018"); got != "402913775018" {
		t.Errorf("NormalizeClaimCode = %q", got)
	}
	for _, bad := range []string{"", "12345678901", "1234567890123", "40291377501x"} {
		if err := protocol.ValidClaimCode(bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("ValidClaimCode(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
