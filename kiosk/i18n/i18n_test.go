package i18n

import (
	"strings"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func TestEveryKeyHasBothLanguages(t *testing.T) {
	for _, k := range Keys() {
		txt, _ := Lookup(k)
		if strings.TrimSpace(txt.Zh) == "" {
			t.Errorf("key %q has no Chinese text", k)
		}
		if strings.TrimSpace(txt.En) == "" {
			t.Errorf("key %q has no English text", k)
		}
	}
	if len(Keys()) < 50 {
		t.Errorf("table has %d keys, expected the whole UI", len(Keys()))
	}
}

func TestEveryProtocolEnumHasALabel(t *testing.T) {
	var keys []Key
	for _, v := range protocol.FeedbackKinds {
		keys = append(keys, KindKey(v))
	}
	for _, v := range protocol.FeedbackCategories {
		keys = append(keys, CategoryKey(v))
		keys = append(keys, Phrases(v)...)
	}
	for _, v := range protocol.NoticeCategories {
		keys = append(keys, NoticeCategoryKey(v))
	}
	for _, v := range protocol.Priorities {
		keys = append(keys, PriorityKey(v))
	}
	for _, v := range protocol.CaseStates {
		keys = append(keys, CaseStateKey(v))
	}
	for _, v := range protocol.Ratings {
		keys = append(keys, RatingKey(v))
	}
	for _, k := range keys {
		if _, ok := Lookup(k); !ok {
			t.Errorf("no label for %q", k)
		}
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name string
		lang Lang
		key  Key
		want string
	}{
		{"kind zh", Zh, KindKey(protocol.KindComplaint), "投诉"},
		{"kind en", En, KindKey(protocol.KindComplaint), "Complaint"},
		{"category zh", Zh, CategoryKey(protocol.CatGreenSpace), "占绿毁绿"},
		{"toggle zh shows English", Zh, LangToggle, "English"},
		{"toggle en shows Chinese", En, LangToggle, "中文"},
		{"unknown language falls back to zh", Lang("fr"), Skip, "跳过"},
		{"missing key shows the key", En, Key("no.such.key"), "no.such.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := T(tt.lang, tt.key); got != tt.want {
				t.Errorf("T(%q, %q) = %q, want %q", tt.lang, tt.key, got, tt.want)
			}
		})
	}
}

func TestPhrases(t *testing.T) {
	tests := []struct {
		name  string
		cat   protocol.FeedbackCategory
		first Key
		n     int
	}{
		{"own phrases first", protocol.CatFacade, "phrase.facade.1", 2 * phrasesPerCategory},
		{"other has only general", protocol.CatOther, "phrase.other.1", phrasesPerCategory},
		{"unknown gets general", "bogus", "phrase.other.1", phrasesPerCategory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Phrases(tt.cat)
			if len(got) != tt.n || got[0] != tt.first {
				t.Errorf("Phrases(%q) = %v, want %d starting with %q", tt.cat, got, tt.n, tt.first)
			}
		})
	}
}

func TestParseLang(t *testing.T) {
	tests := []struct {
		in      string
		want    Lang
		wantErr bool
	}{
		{"", Zh, false},
		{"zh", Zh, false},
		{"en", En, false},
		{"de", Zh, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLang(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseLang(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
	if Zh.Other() != En || En.Other() != Zh {
		t.Error("Other does not toggle")
	}
}
