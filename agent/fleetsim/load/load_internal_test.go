package load

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/fleetsim"
	"github.com/shequ/shequ/protocol"
)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestDecodeGolden(t *testing.T) {
	ks, err := decodeKiosks(readTestdata(t, "kiosks.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 3 || ks[0].ID != "k-0001" || !ks[0].InOrgTree || ks[0].SoftwareVersion != "fleetsim" {
		t.Errorf("kiosks = %+v", ks)
	}
	for _, name := range []string{"notice.json", "notice-withdrawn.json"} {
		id, err := decodeNotice(readTestdata(t, name))
		if err != nil || id != "01a2196d-3677-7431-a02d-09232bf7442f" {
			t.Errorf("%s: id %q, err %v", name, id, err)
		}
	}
	if code, err := decodeClaim(readTestdata(t, "claim.json")); err != nil || code != "4821-0937-5562" {
		t.Errorf("claim: code %q, err %v", code, err)
	}
	fb, err := decodeFeedback(readTestdata(t, "feedback.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 3 || fb[0].Kiosk != "k-0922" || fb[0].Ticket != "261127-K-0922-0010" || fb[0].SubmittedAt.IsZero() {
		t.Errorf("feedback = %+v", fb)
	}
}

func TestDecodeInvalid(t *testing.T) {
	pad := func(name string, n int) []byte {
		return append(readTestdata(t, name), strings.Repeat(" ", n)...)
	}
	tests := []struct {
		name   string
		decode func([]byte) error
		data   []byte
	}{
		{"kiosks not JSON", kiosksErr, []byte("<html>")},
		{"kiosks field missing", kiosksErr, []byte(`{"kiosk":[]}`)},
		{"kiosks bad id", kiosksErr, []byte(`{"kiosks":[{"id":"K 1"}]}`)},
		{"kiosks twice", kiosksErr, []byte(`{"kiosks":[{"id":"k-1"},{"id":"k-1"}]}`)},
		{"kiosks trailing data", kiosksErr, []byte(`{"kiosks":[]} {}`)},
		{"kiosks too large", kiosksErr, pad("kiosks.json", MaxKiosksReply)},
		{"notice without id", noticeErr, []byte(`{"title":"x"}`)},
		{"notice id not a string", noticeErr, []byte(`{"id":7}`)},
		{"notice too large", noticeErr, pad("notice.json", MaxNoticeReply)},
		{"claim without code", claimErr, []byte(`{"id":"x"}`)},
		{"claim code not digits", claimErr, []byte(`{"code":"4821-0937-556x"}`)},
		{"claim code too long", claimErr, []byte(`{"code":"4821-0937-5562-1"}`)},
		{"claim too large", claimErr, pad("claim.json", MaxClaimReply)},
		{"feedback field missing", feedbackErr, []byte(`{}`)},
		{"feedback null", feedbackErr, []byte(`null`)},
		{"feedback without ticket", feedbackErr, []byte(`{"feedback":[{"id":"a","kiosk":"k-1"}]}`)},
		{"feedback bad kiosk", feedbackErr, []byte(`{"feedback":[{"id":"a","ticket":"T","kiosk":""}]}`)},
		{"feedback bad time", feedbackErr, []byte(`{"feedback":[{"id":"a","ticket":"T","kiosk":"k","submitted_at":"yesterday"}]}`)},
		{"feedback too many", feedbackErr, []byte(`{"feedback":[` + strings.Repeat(`{"id":"a","ticket":"T","kiosk":"k"},`, MaxFeedbackLimit) + `{"id":"a","ticket":"T","kiosk":"k"}]}`)},
		{"feedback too large", feedbackErr, pad("feedback.json", MaxFeedbackReply)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.data); !errors.Is(err, ErrReply) {
				t.Fatalf("decode = %v, want ErrReply", err)
			}
		})
	}
}

func kiosksErr(b []byte) error   { _, err := decodeKiosks(b); return err }
func noticeErr(b []byte) error   { _, err := decodeNotice(b); return err }
func feedbackErr(b []byte) error { _, err := decodeFeedback(b); return err }
func claimErr(b []byte) error    { _, err := decodeClaim(b); return err }

func TestTally(t *testing.T) {
	since := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	before, after := since.Add(-time.Hour), since.Add(time.Minute)
	rc := func(id, ticket string) fleetsim.Receipt {
		return fleetsim.Receipt{Kiosk: "k-1", FeedbackReceipt: protocol.FeedbackReceipt{ID: id, Ticket: ticket, SubmittedAt: after}}
	}
	row := func(id, ticket string, at time.Time) FeedbackRow {
		return FeedbackRow{ID: id, Ticket: ticket, Kiosk: "k-1", SubmittedAt: at, ReceivedAt: at}
	}
	full := make([]FeedbackRow, MaxFeedbackLimit)
	for i := range full {
		full[i] = row("x", "T", after)
	}
	tests := []struct {
		name     string
		receipts []fleetsim.Receipt
		rows     []FeedbackRow
		want     Tally
		wantErr  bool
	}{
		{"all there", []fleetsim.Receipt{rc("a", "A"), rc("b", "B")},
			[]FeedbackRow{row("b", "B", after), row("a", "A", after)}, Tally{Stored: 2}, false},
		{"older rows of the kiosk are ignored", []fleetsim.Receipt{rc("a", "A")},
			[]FeedbackRow{row("a", "A", after), row("old", "O", before)}, Tally{Stored: 1}, false},
		{"lost", []fleetsim.Receipt{rc("a", "A"), rc("b", "B")},
			[]FeedbackRow{row("a", "A", after)}, Tally{Stored: 1, Lost: 1, Examples: []string{"lost b"}}, false},
		{"stored with another ticket counts as lost", []fleetsim.Receipt{rc("a", "A")},
			[]FeedbackRow{row("a", "Z", after)}, Tally{Lost: 1, Examples: []string{"lost a"}}, false},
		{"listed twice", []fleetsim.Receipt{rc("a", "A")},
			[]FeedbackRow{row("a", "A", after), row("a", "A", after)}, Tally{Stored: 1, Duplicates: 1, Examples: []string{"duplicated a"}}, false},
		{"unasked record", []fleetsim.Receipt{rc("a", "A")},
			[]FeedbackRow{row("a", "A", after), row("c", "C", after)}, Tally{Stored: 1, Extra: 1, Examples: []string{"extra c"}}, false},
		{"more than the API lists", nil, full, Tally{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Tally
			err := got.add("k-1", tc.receipts, tc.rows, since)
			if (err != nil) != tc.wantErr {
				t.Fatalf("add = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got.Stored != tc.want.Stored || got.Lost != tc.want.Lost || got.Duplicates != tc.want.Duplicates ||
				got.Extra != tc.want.Extra || strings.Join(got.Examples, ",") != strings.Join(tc.want.Examples, ",") {
				t.Fatalf("tally = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func addSeeds(f *testing.F) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDecodeKiosks(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := decodeKiosks(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range ks {
			if protocol.ValidID(k.ID) != nil || seen[k.ID] {
				t.Fatalf("accepted kiosk %q", k.ID)
			}
			seen[k.ID] = true
		}
	})
}

func FuzzDecodeNotice(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if id, err := decodeNotice(data); err == nil && protocol.ValidID(id) != nil {
			t.Fatalf("accepted notice id %q", id)
		}
	})
}

func FuzzDecodeFeedback(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := decodeFeedback(data)
		if err != nil {
			return
		}
		if len(rows) > MaxFeedbackLimit {
			t.Fatalf("accepted %d rows", len(rows))
		}
		for _, r := range rows {
			if r.ID == "" || r.Ticket == "" || protocol.ValidID(r.Kiosk) != nil {
				t.Fatalf("accepted row %+v", r)
			}
		}
	})
}

func FuzzDecodeClaim(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		code, err := decodeClaim(data)
		if err == nil && protocol.ValidClaimCode(protocol.NormalizeClaimCode(code)) != nil {
			t.Fatalf("accepted claim code %q", code)
		}
	})
}
