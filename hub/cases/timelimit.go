package cases

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// TimeLimit returns a category's time limit in working days.
func (s *Service) TimeLimit(category string) int {
	if d, ok := s.cfg.TimeLimits[protocol.FeedbackCategory(category)]; ok {
		return d
	}
	return DefaultTimeLimit
}

// Due returns the deadline of a case of the category dispatched at t: the
// same time of day (in Shanghai) on the TimeLimit-th working day after t's
// date.
func (s *Service) Due(t time.Time, category string) time.Time {
	return s.addWorkingDays(t, s.TimeLimit(category))
}

// addWorkingDays returns the same time of day (in Shanghai) on the n-th
// working day after t's date.
func (s *Service) addWorkingDays(t time.Time, n int) time.Time {
	d := t.In(shanghai)
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if s.cfg.WorkingDay(d) {
			n--
		}
	}
	return d.UTC()
}

// Overdue returns open cases past their deadline at now, one page, the
// earliest deadline first (f narrows the list and pages it; its due fields
// are replaced).
func (s *Service) Overdue(ctx context.Context, now time.Time, f store.CaseFilter) ([]Case, error) {
	f.DueBefore, f.DueFrom = now, time.Time{}
	return s.List(ctx, f)
}

// DueSoon returns open cases not yet overdue at now but due within the
// given duration (one page, like Overdue).
func (s *Service) DueSoon(ctx context.Context, now time.Time, within time.Duration, f store.CaseFilter) ([]Case, error) {
	f.DueFrom, f.DueBefore = now, now.Add(within)
	return s.List(ctx, f)
}

// supervisionLevels are the levels an overdue case climbs, one per
// escalation.
var supervisionLevels = []protocol.Level{protocol.LevelStreet, protocol.LevelDistrict, protocol.LevelCity}

// Escalate raises, one step at a time up the org tree (street → district →
// city), the supervision level of every open case whose next escalation is
// due at now: the first step at its deadline, each next one EscalateEvery
// later. A call made late takes every step due by now, so a case's level
// depends only on how long it has been overdue. Each step marks the case
// supervised and is recorded on its timeline by System. It returns the
// number of steps taken.
func (s *Service) Escalate(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for {
		page, err := s.cfg.Store.ListCases(ctx, store.CaseFilter{EscalateBy: now, Limit: store.MaxCasePage})
		if err != nil {
			return n, fmt.Errorf("cases: escalate: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, c := range page {
			if err := s.escalate(ctx, c.ID, now); err != nil {
				return n, err
			}
			n++
		}
	}
}

func (s *Service) escalate(ctx context.Context, id string, now time.Time) error {
	var out Case
	err := s.cfg.Store.UpdateCase(ctx, []string{id}, func(cs []*store.CaseRecord) ([]store.CaseEvent, error) {
		c := cs[0]
		defer func() { out = *c }()
		if c.EscalateAt.IsZero() || c.EscalateAt.After(now) {
			return nil, nil // changed meanwhile
		}
		if !slices.Contains(OpenStates, State(c.State)) {
			c.EscalateAt = time.Time{}
			return nil, nil
		}
		next := 0
		if i := slices.Index(supervisionLevels, protocol.Level(c.SupervisionLevel)); i >= 0 {
			next = i + 1
		}
		if next >= len(supervisionLevels) {
			c.EscalateAt = time.Time{}
			return nil, nil
		}
		level := supervisionLevels[next]
		node := map[protocol.Level]string{protocol.LevelStreet: c.Street, protocol.LevelDistrict: c.District,
			protocol.LevelCity: s.cfg.Tree.Root().ID}[level]
		evs, err := s.step(c, ActionEscalate, System, fmt.Sprintf("超期督办：%s %s", level, node), "", "", now)
		if err != nil {
			return nil, err
		}
		c.Supervised = true
		c.SupervisionLevel = string(level)
		if next == len(supervisionLevels)-1 {
			c.EscalateAt = time.Time{}
		} else {
			c.EscalateAt = c.EscalateAt.Add(s.cfg.EscalateEvery)
		}
		return evs, nil
	})
	if err != nil {
		return fmt.Errorf("cases: escalate %s: %w", id, err)
	}
	s.changed(ctx, out)
	return nil
}
