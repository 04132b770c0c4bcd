package ratelimit

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := New(10, 5, 30, 8, clock) // 10/min per key, burst 5; 30/min global, burst 8
	type step struct {
		name    string
		advance time.Duration
		key     string
		n       int // attempts
		allowed int // of which allowed
	}
	steps := []step{
		{"burst of one client", 0, "a", 7, 5},
		{"another client is not affected", 0, "b", 3, 3},
		{"global burst exhausted", 0, "c", 2, 0},
		{"one token back after 6s for a", 6 * time.Second, "a", 2, 1},
		{"global refills too", 10 * time.Second, "c", 3, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now = now.Add(st.advance)
			got := 0
			for range st.n {
				ok, retry := l.Allow(st.key)
				if ok {
					got++
				} else if retry <= 0 {
					t.Errorf("refused with Retry-After %v", retry)
				}
			}
			if got != st.allowed {
				t.Fatalf("allowed %d of %d, want %d", got, st.n, st.allowed)
			}
		})
	}
	ok, retry := l.Allow("a")
	for ok {
		ok, retry = l.Allow("a")
	}
	if retry <= 0 || retry > 6*time.Second {
		t.Errorf("after exhausting a: ok=%v retry=%v, want refused for about 6s", ok, retry)
	}
}
