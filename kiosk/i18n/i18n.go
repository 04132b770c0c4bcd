// Package i18n holds the kiosk's one message table: every string the kiosk
// shows, in Simplified Chinese (the default) and English, and the labels of
// every enum of the protocol package.
package i18n

import (
	"fmt"

	"github.com/shequ/shequ/protocol"
)

// Lang is a display language.
type Lang string

// Languages. Zh is the default.
const (
	Zh Lang = "zh"
	En Lang = "en"
)

// Langs lists the supported languages, default first.
var Langs = []Lang{Zh, En}

// ParseLang parses "zh" or "en"; the empty string means Zh.
func ParseLang(s string) (Lang, error) {
	switch Lang(s) {
	case "", Zh:
		return Zh, nil
	case En:
		return En, nil
	}
	return Zh, fmt.Errorf("i18n: unknown language %q, want zh or en", s)
}

// Other returns the language the language toggle switches to.
func (l Lang) Other() Lang {
	if l == En {
		return Zh
	}
	return En
}

// Key names one message of the table.
type Key string

// Text is one message in both languages.
type Text struct {
	Zh, En string
}

// T returns the message for key in lang. A key missing from the table (a
// programming error the tests catch) is returned as is, so it shows up on
// screen rather than as a blank.
func T(lang Lang, key Key) string {
	t, ok := messages[key]
	if !ok {
		return string(key)
	}
	if lang == En && t.En != "" {
		return t.En
	}
	return t.Zh
}

// Keys returns every key of the table, for tests and tools.
func Keys() []Key {
	keys := make([]Key, 0, len(messages))
	for k := range messages {
		keys = append(keys, k)
	}
	return keys
}

// Lookup returns the message of key and whether the table has it.
func Lookup(key Key) (Text, bool) {
	t, ok := messages[key]
	return t, ok
}

// KindKey is the label key of a feedback kind.
func KindKey(k protocol.FeedbackKind) Key { return Key("kind." + string(k)) }

// CategoryKey is the label key of a feedback category.
func CategoryKey(c protocol.FeedbackCategory) Key { return Key("category." + string(c)) }

// NoticeCategoryKey is the label key of a notice category.
func NoticeCategoryKey(c protocol.NoticeCategory) Key { return Key("notice." + string(c)) }

// PriorityKey is the label key of a notice priority.
func PriorityKey(p protocol.Priority) Key { return Key("priority." + string(p)) }

// Phrases returns the keys of the preset description phrases offered for a
// feedback category, in display order: the category's own phrases, then
// the general ones of CatOther. An unknown category gets the general ones.
func Phrases(c protocol.FeedbackCategory) []Key {
	keys := categoryPhrases(protocol.CatOther)
	if c != protocol.CatOther && oneOf(c, protocol.FeedbackCategories) {
		keys = append(categoryPhrases(c), keys...)
	}
	return keys
}

func oneOf[T comparable](v T, all []T) bool {
	for _, a := range all {
		if a == v {
			return true
		}
	}
	return false
}
