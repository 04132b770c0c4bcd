// Package ratelimit is a token-bucket rate limiter keyed by client (an IP
// address), with a global bucket on top, for the hub's public endpoints.
package ratelimit

import (
	"sync"
	"time"
)

// maxKeys bounds the per-key buckets kept; when full, idle buckets (full
// again) are dropped, and if none is idle the caller is refused.
const maxKeys = 10000

// Limiter allows Rate events per second per key, in bursts of Burst, and
// GlobalRate per second (bursts of GlobalBurst) in total. It is safe for
// concurrent use.
type Limiter struct {
	rate, burst             float64
	globalRate, globalBurst float64
	now                     func() time.Time

	mu      sync.Mutex
	global  bucket
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter. now may be nil (time.Now).
func New(perMinute, burst, globalPerMinute, globalBurst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		rate: float64(perMinute) / 60, burst: float64(burst),
		globalRate: float64(globalPerMinute) / 60, globalBurst: float64(globalBurst),
		now: now, buckets: map[string]*bucket{},
		global: bucket{tokens: float64(globalBurst), last: now()},
	}
}

// refill adds the tokens earned since the bucket's last use.
func (b *bucket) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(burst, b.tokens+d*rate)
	}
	b.last = now
}

// wait is how long until the bucket holds one token.
func (b *bucket) wait(rate float64) time.Duration {
	if rate <= 0 {
		return time.Hour
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// Allow takes a token for key. When refused it says how long to wait.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= maxKeys {
			l.prune(now)
		}
		if len(l.buckets) >= maxKeys {
			return false, time.Minute
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rate, l.burst)
	l.global.refill(now, l.globalRate, l.globalBurst)
	if b.tokens < 1 {
		return false, b.wait(l.rate)
	}
	if l.global.tokens < 1 {
		return false, l.global.wait(l.globalRate)
	}
	b.tokens--
	l.global.tokens--
	return true, 0
}

// prune drops buckets that have refilled completely.
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		b.refill(now, l.rate, l.burst)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}
