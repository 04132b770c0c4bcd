package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// writeCaseGoldens writes the golden files of the case board, the rating
// record and the local rating request.
func writeCaseGoldens(t *testing.T) {
	answeredAt := fixedTime.Add(-3 * time.Hour)
	board := protocol.CaseBoard{Kiosk: "k-sangcheng-01", Version: 42, Cases: []protocol.CaseStatus{
		{Ticket: "261126-K-SANGCHENG-01-0043", State: protocol.CaseReceived, Category: protocol.CatGreenSpace,
			Kind: protocol.KindHelp, Updated: fixedTime.Add(-time.Hour)},
		{Ticket: "261125-K-SANGCHENG-01-0042", State: protocol.CaseAnswered, Category: protocol.CatIllegalConstruction,
			Kind: protocol.KindComplaint, Answer: "经现场核查，楼顶彩钢板房系违法搭建，已责令当事人于12月3日前自行拆除，逾期将依法强制拆除。",
			AnsweredAt: answeredAt, Rateable: true, Updated: answeredAt},
		{Ticket: "261120-K-SANGCHENG-01-0040", State: protocol.CaseRated, Category: protocol.CatPropertyDuty,
			Kind: protocol.KindSuggestion, Answer: "已约谈物业公司，垃圾清运改为每日两次。", AnsweredAt: answeredAt.Add(-72 * time.Hour),
			Rating: protocol.RatingSatisfied, Updated: answeredAt.Add(-48 * time.Hour)},
	}}
	out, err := protocol.EncodeSigned("019ac0f4-4000-7000-8000-00000000000d", protocol.TypeCases, fixedTime, board, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	writeSigned(t, "cases.json", out)
	rating := protocol.CaseRating{Kiosk: "k-sangcheng-01", Ticket: "261125-K-SANGCHENG-01-0042",
		Rating: protocol.RatingBasicallySatisfied, At: fixedTime}
	b, err := protocol.EncodeID("019ac0f4-4000-7000-8000-00000000000e", protocol.TypeRating, fixedTime, rating)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "rating.json"), append(pretty.Bytes(), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, "local_rating_request.json", protocol.LocalRatingRequest{Rating: protocol.RatingSatisfied})
}

func TestCaseBoardGolden(t *testing.T) {
	e, b, err := protocol.DecodeCaseBoard(readFile(t, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyEnvelope(e, pub(testKey(1))); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if b.Version != 42 || len(b.Cases) != 3 || !b.Cases[1].Rateable || b.Cases[2].Rating != protocol.RatingSatisfied {
		t.Errorf("cases.json decoded to %+v", b)
	}
	if protocol.UpTopic("k1", protocol.ChannelRating).Retained() || !protocol.DownTopic("k1", protocol.ChannelCases).Retained() {
		t.Error("cases must be retained and rating not")
	}
	for _, c := range []struct {
		name, query, want string
	}{
		{"ticket", "261125-K-SANGCHENG-01-0042", "261125-K-SANGCHENG-01-0042"},
		{"ticket in lower case", " 261125-k-sangcheng-01-0042 ", "261125-K-SANGCHENG-01-0042"},
		{"query code", "2611250042", "261125-K-SANGCHENG-01-0042"},
		{"query code of the newest", "2611260043", "261126-K-SANGCHENG-01-0043"},
		{"query code with the wrong date", "2611260042", ""},
		{"digits too short", "26112500", ""},
		{"unknown ticket", "261125-K-SANGCHENG-01-0099", ""},
		{"empty", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := b.Find(c.query)
			if ok != (c.want != "") || got.Ticket != c.want {
				t.Fatalf("Find(%q) = %q, %v; want %q", c.query, got.Ticket, ok, c.want)
			}
		})
	}
}

func TestQueryCode(t *testing.T) {
	for _, c := range []struct {
		ticket, want string
	}{
		{"261126-PD-0042-0007", "2611260007"},
		{"261126-K-SANGCHENG-01-12345", "26112612345"},
		{"261126-ABCDEFGH-0001", "2611260001"},
		{"SC-20261126-0042", ""},
		{"261126-PD-007", ""},
		{"261126--0007", "2611260007"},
		{"2611260007", ""},
		{"26112-PD-0007", ""},
		{"261126-PD-00A7", ""},
		{"261126-PD-" + strings.Repeat("1", 21), ""},
	} {
		got, ok := protocol.QueryCode(c.ticket)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("QueryCode(%q) = %q, %v; want %q", c.ticket, got, ok, c.want)
		}
		if ok && !protocol.IsQueryCode(got) {
			t.Errorf("QueryCode(%q) = %q is not IsQueryCode", c.ticket, got)
		}
	}
}

func TestCaseValidate(t *testing.T) {
	good := protocol.CaseStatus{Ticket: "261126-PD-0042-0007", State: protocol.CaseAnswered, Category: protocol.CatOther,
		Kind: protocol.KindHelp, Answer: "已处理", Rateable: true, Updated: fixedTime}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(c *protocol.CaseStatus){
		"rated and rateable": func(c *protocol.CaseStatus) { c.Rating = protocol.RatingSatisfied },
		"unknown state":      func(c *protocol.CaseStatus) { c.State = "lost" },
		"unknown rating":     func(c *protocol.CaseStatus) { c.Rateable = false; c.Rating = "meh" },
		"long answer":        func(c *protocol.CaseStatus) { c.Answer = strings.Repeat("答", protocol.MaxAnswer+1) },
		"no updated":         func(c *protocol.CaseStatus) { c.Updated = time.Time{} },
		"bad ticket":         func(c *protocol.CaseStatus) { c.Ticket = "x" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			mutate(&c)
			if err := c.Validate(); !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
	dup := protocol.CaseBoard{Kiosk: "k1", Version: 1, Cases: []protocol.CaseStatus{good, good}}
	if err := dup.Validate(); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("duplicate tickets: %v", err)
	}
	many := protocol.CaseBoard{Kiosk: "k1", Version: 1}
	for i := range protocol.MaxBoardCases + 1 {
		c := good
		c.Ticket = "261126-PD-" + strings.Repeat("0", 4) + string(rune('A'+i%26)) + string(rune('A'+i/26%26))
		many.Cases = append(many.Cases, c)
	}
	if err := many.Validate(); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("%d cases: %v", len(many.Cases), err)
	}
}

// TestCaseBoardFitsLimit: a full board of long Chinese answers encodes.
func TestCaseBoardFitsLimit(t *testing.T) {
	b := protocol.CaseBoard{Kiosk: "k-sangcheng-01", Version: 1}
	for i := range protocol.MaxBoardCases {
		b.Cases = append(b.Cases, protocol.CaseStatus{
			Ticket: "261126-K-SANGCHENG-01-" + strings.Repeat("9", 10) + string(rune('0'+i%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i/100)),
			State:  protocol.CaseClosed, Category: protocol.CatLoadBearing, Kind: protocol.KindConsultation,
			Answer: strings.Repeat("城", protocol.MaxAnswer), AnsweredAt: fixedTime, Rating: protocol.RatingNotSatisfied, Updated: fixedTime,
		})
	}
	out, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeCases, fixedTime, b, testKey(1))
	if err != nil {
		t.Fatalf("encode a full board: %v", err)
	}
	if _, _, err := protocol.DecodeCaseBoard(out); err != nil {
		t.Fatalf("decode a full board: %v", err)
	}
}

func TestCheckin(t *testing.T) {
	key := testKey(7)
	now := time.Date(2026, 11, 26, 10, 0, 30, 0, time.UTC)
	slot := protocol.CheckinSlot(now)
	if slot != now.Unix()/60 {
		t.Fatalf("CheckinSlot = %d", slot)
	}
	if end := protocol.CheckinSlotEnd(slot); !end.Equal(time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("CheckinSlotEnd = %v", end)
	}
	sig := protocol.SignCheckin(key, "k-sangcheng-01", slot)
	u := protocol.CheckinURL("https://hub.shequ.example/", "k-sangcheng-01", slot, sig)
	if !strings.HasPrefix(u, "https://hub.shequ.example/m/checkin?k=k-sangcheng-01&s=") {
		t.Fatalf("CheckinURL = %s", u)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	k, s, g, err := protocol.ParseCheckin(pu.Query())
	if err != nil || k != "k-sangcheng-01" || s != slot || !bytes.Equal(g, sig) {
		t.Fatalf("ParseCheckin = %q %d %x %v", k, s, g, err)
	}
	for _, c := range []struct {
		name  string
		kiosk string
		slot  int64
		key   int
		now   time.Time
		want  error
	}{
		{"current slot", "k-sangcheng-01", slot, 7, now, nil},
		{"two slots old", "k-sangcheng-01", slot, 7, now.Add(2 * time.Minute), nil},
		{"three slots old", "k-sangcheng-01", slot, 7, now.Add(3 * time.Minute), protocol.ErrExpired},
		{"one slot ahead (clock skew)", "k-sangcheng-01", slot, 7, now.Add(-time.Minute), nil},
		{"two slots ahead", "k-sangcheng-01", slot, 7, now.Add(-2 * time.Minute), protocol.ErrSignature},
		{"another kiosk's key", "k-sangcheng-01", slot, 8, now, protocol.ErrSignature},
		{"signature of another kiosk", "k-other", slot, 7, now, protocol.ErrSignature},
		{"signature of another slot", "k-sangcheng-01", slot + 1, 7, now, protocol.ErrSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if c.name == "two slots ahead" {
				want = protocol.ErrExpired // genuine signature, too far ahead
			}
			err := protocol.VerifyCheckin(pub(testKey(c.key)), c.kiosk, c.slot, sig, c.now)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("VerifyCheckin = %v, want %v", err, want)
			}
			if errors.Is(err, protocol.ErrExpired) && errors.Is(err, protocol.ErrSignature) {
				t.Fatal("one error is both expired and a bad signature")
			}
		})
	}
	if err := protocol.VerifyCheckin(nil, "k1", slot, sig, now); !errors.Is(err, protocol.ErrSignature) {
		t.Errorf("no key: %v", err)
	}
}

func TestParseCheckinStrict(t *testing.T) {
	sig := protocol.SignCheckin(testKey(7), "k1", 29000000)
	good := protocol.CheckinURL("https://h", "k1", 29000000, sig)
	q := func(raw string) url.Values {
		v, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	goodQ := q(strings.SplitN(good, "?", 2)[1])
	sigS := goodQ.Get("sig")
	for name, raw := range map[string]string{
		"missing sig":       "k=k1&s=29000000",
		"missing kiosk":     "s=29000000&sig=" + sigS,
		"missing slot":      "k=k1&sig=" + sigS,
		"kiosk twice":       "k=k1&k=k2&s=29000000&sig=" + sigS,
		"slot twice":        "k=k1&s=29000000&s=29000001&sig=" + sigS,
		"unknown parameter": "k=k1&s=29000000&sig=" + sigS + "&x=1",
		"upper-case kiosk":  "k=K1&s=29000000&sig=" + sigS,
		"negative slot":     "k=k1&s=-29000000&sig=" + sigS,
		"leading zero":      "k=k1&s=029000000&sig=" + sigS,
		"slot zero":         "k=k1&s=0&sig=" + sigS,
		"slot overflows":    "k=k1&s=99999999999999999999&sig=" + sigS,
		"slot not decimal":  "k=k1&s=0x1f&sig=" + sigS,
		"short sig":         "k=k1&s=29000000&sig=" + sigS[:80],
		"padded sig":        "k=k1&s=29000000&sig=" + sigS + "==",
		"std base64 sig":    "k=k1&s=29000000&sig=" + strings.NewReplacer("-", "+", "_", "/").Replace(sigS[:85]) + "/",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := protocol.ParseCheckin(q(raw)); !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("ParseCheckin(%s) = %v, want ErrInvalid", raw, err)
			}
		})
	}
}

// FuzzParseCheckin: whatever ParseCheckin accepts makes a URL that parses
// to the same values, and it never panics.
func FuzzParseCheckin(f *testing.F) {
	sig := protocol.SignCheckin(testKey(7), "k-sangcheng-01", 29000000)
	good := protocol.CheckinURL("https://hub.shequ.example", "k-sangcheng-01", 29000000, sig)
	f.Add(strings.SplitN(good, "?", 2)[1])
	f.Add("k=k1&s=1&sig=" + strings.Repeat("A", 86))
	f.Add("k=k1&k=k1&s=1")
	f.Add("s=-1&sig=%00")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		k, s, g, err := protocol.ParseCheckin(v)
		if err != nil {
			return
		}
		if protocol.ValidID(k) != nil || s <= 0 || len(g) != 64 {
			t.Fatalf("accepted %q as %q %d %x", raw, k, s, g)
		}
		u, err := url.Parse(protocol.CheckinURL("https://h", k, s, g))
		if err != nil {
			t.Fatal(err)
		}
		k2, s2, g2, err := protocol.ParseCheckin(u.Query())
		if err != nil || k2 != k || s2 != s || !bytes.Equal(g2, g) {
			t.Fatalf("round trip of %q: %q %d %x %v", raw, k2, s2, g2, err)
		}
	})
}
