package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Day is a calendar day in Shanghai (UTC+8): days since 1970-01-01. The
// analysis tables bucket cases by it in SQL with integer arithmetic.
type Day int64

// shanghaiOffset is Shanghai's offset from UTC in seconds (no daylight
// saving time).
const shanghaiOffset = 8 * 3600

// DayOf returns the Shanghai day of t.
func DayOf(t time.Time) Day {
	return Day((t.Unix() + shanghaiOffset) / 86400)
}

// Start returns the day's first instant.
func (d Day) Start() time.Time {
	return time.Unix(int64(d)*86400-shanghaiOffset, 0).UTC()
}

// Week returns the Monday that starts d's week.
func (d Day) Week() Day {
	// 1970-01-01 was a Thursday: day 4 is the first Monday.
	return (d+3)/7*7 - 3
}

// MaxStatsCommunities bounds the communities of one analysis query.
const MaxStatsCommunities = 10_000

// StatsQuery selects the cases and check-ins of an analysis report: those
// of the communities, received from the first instant of From to the last
// of To (Shanghai days, both included).
type StatsQuery struct {
	Communities []string // required: the caller's scope
	From, To    Day
	Now         time.Time // "overdue now" is open and due before Now
	Weekly      bool      // the series per week (from Monday) instead of per day
}

// Tally counts cases received in a period by their current state.
// Merged cases are not counted (their complaint lives on in the case they
// joined).
type Tally struct {
	Cases  int64
	Closed int64
	Open   int64 // received, dispatched, in progress or returned
	// Overdue is open and past its deadline now.
	Overdue int64
	// DueClosed are closed cases that had a deadline; OnTime those of them
	// closed at or before it.
	DueClosed, OnTime int64
	// Rated have a rating; Satisfied are rated satisfied or basically
	// satisfied.
	Rated, Satisfied int64
	// Answered were answered at least once; AnswerSeconds is the sum of
	// their times from receipt to first answer.
	Answered, AnswerSeconds int64
}

func (t *Tally) add(o Tally) {
	t.Cases += o.Cases
	t.Closed += o.Closed
	t.Open += o.Open
	t.Overdue += o.Overdue
	t.DueClosed += o.DueClosed
	t.OnTime += o.OnTime
	t.Rated += o.Rated
	t.Satisfied += o.Satisfied
	t.Answered += o.Answered
	t.AnswerSeconds += o.AnswerSeconds
}

// Count is a number of cases with one value of a column.
type Count struct {
	Key string
	N   int64
}

// CommunityStats are one community's numbers.
type CommunityStats struct {
	Community string
	Tally
	Categories []Count // most first (ties by key)
	// Checkins are officers' check-ins at the community's workstation in
	// the period; CheckinDays the days with at least one.
	Checkins, CheckinDays int64
}

// SeriesPoint is the number of cases of one source received in a bucket
// (a day, or a week from Monday; Start may be before the query's From).
type SeriesPoint struct {
	Start  Day
	Source string
	N      int64
}

// Stats is an analysis report.
type Stats struct {
	Total Tally
	// Communities: every community of the query, in its order.
	Communities []CommunityStats
	// Sources, Kinds and Categories over all communities, most first.
	Sources, Kinds, Categories []Count
	// Series in time order, then by source.
	Series []SeriesPoint
	// AnswerMedian is the median time from receipt to first answer of the
	// answered cases (zero if none).
	AnswerMedian time.Duration
}

// Stats computes an analysis report. Everything is counted in SQLite:
// the totals from case_stats_daily (schema 9), overdue cases and the
// median from their covering indexes, check-ins from checkins_community.
// All the queries read one snapshot: they run on one connection inside a
// deferred read transaction (a plain BEGIN; the store's BeginTx is
// IMMEDIATE and would take the write lock), so a case that changes
// meanwhile counts by the same state in every table, and writers are not
// held up (WAL).
func (s *SQLite) Stats(ctx context.Context, q StatsQuery) (out Stats, err error) {
	switch {
	case len(q.Communities) == 0:
		return out, errors.New("store: stats: no communities")
	case len(q.Communities) > MaxStatsCommunities:
		return out, fmt.Errorf("store: stats: %d communities, at most %d", len(q.Communities), MaxStatsCommunities)
	case q.To < q.From:
		return out, fmt.Errorf("store: stats: period ends (%d) before it starts (%d)", q.To, q.From)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return out, fmt.Errorf("store: stats: %w", err)
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: stats: %w", cerr)
		}
	}()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return out, fmt.Errorf("store: stats: begin: %w", err)
	}
	defer func() {
		// Read only: rolling back ends the snapshot.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && err == nil {
			err = fmt.Errorf("store: stats: end: %w", rerr)
		}
	}()
	in := "community IN (?" + strings.Repeat(", ?", len(q.Communities)-1) + ")"
	// args returns the communities followed by more.
	args := func(more ...any) []any {
		a := make([]any, 0, len(q.Communities)+len(more))
		for _, c := range q.Communities {
			a = append(a, c)
		}
		return append(a, more...)
	}
	days := " AND day BETWEEN ? AND ?"
	from, to := q.From.Start().UnixNano(), (q.To + 1).Start().UnixNano()

	byComm := make(map[string]*CommunityStats, len(q.Communities))
	for _, c := range q.Communities {
		if _, ok := byComm[c]; !ok {
			out.Communities = append(out.Communities, CommunityStats{Community: c})
		}
		byComm[c] = nil
	}
	for i := range out.Communities {
		byComm[out.Communities[i].Community] = &out.Communities[i]
	}

	err = each(ctx, conn, "stats per community", `SELECT community, SUM(n), SUM(closed), SUM(open), SUM(due_closed), SUM(on_time),
		SUM(rated), SUM(satisfied), SUM(answered), SUM(answer_secs)
		FROM case_stats_daily WHERE `+in+days+` GROUP BY community`, args(q.From, q.To), func(sc scanner) error {
		var c string
		var t Tally
		if err := sc.Scan(&c, &t.Cases, &t.Closed, &t.Open, &t.DueClosed, &t.OnTime, &t.Rated, &t.Satisfied,
			&t.Answered, &t.AnswerSeconds); err != nil {
			return err
		}
		byComm[c].Tally.add(t)
		return nil
	})
	if err != nil {
		return out, err
	}
	// The planner, left alone, walks cases_community (state, created_at)
	// and reads every row for its deadline: 0.9 s for a district's year.
	err = each(ctx, conn, "stats overdue", `SELECT community, COUNT(*) FROM cases INDEXED BY cases_community_due_created
		WHERE `+in+` AND state IN ('received', 'dispatched', 'in_progress', 'returned') AND due_at < ?
		AND created_at >= ? AND created_at < ? GROUP BY community`, args(q.Now.UnixNano(), from, to), func(sc scanner) error {
		var c string
		var n int64
		if err := sc.Scan(&c, &n); err != nil {
			return err
		}
		byComm[c].Overdue = n
		return nil
	})
	if err != nil {
		return out, err
	}
	err = each(ctx, conn, "stats categories per community", `SELECT community, category, SUM(n)
		FROM case_stats_daily WHERE `+in+days+` GROUP BY community, category`, args(q.From, q.To), func(sc scanner) error {
		var c Count
		var comm string
		if err := sc.Scan(&comm, &c.Key, &c.N); err != nil {
			return err
		}
		if c.N > 0 {
			byComm[comm].Categories = append(byComm[comm].Categories, c)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	err = each(ctx, conn, "stats check-ins", `SELECT community, COUNT(*), COUNT(DISTINCT (at / 1000000000 + 28800) / 86400)
		FROM checkins WHERE `+in+` AND at >= ? AND at < ? GROUP BY community`, args(from, to), func(sc scanner) error {
		var c string
		var n, d int64
		if err := sc.Scan(&c, &n, &d); err != nil {
			return err
		}
		byComm[c].Checkins, byComm[c].CheckinDays = n, d
		return nil
	})
	if err != nil {
		return out, err
	}
	cats := map[string]int64{}
	for i := range out.Communities {
		cs := &out.Communities[i]
		out.Total.add(cs.Tally)
		sortCounts(cs.Categories)
		for _, c := range cs.Categories {
			cats[c.Key] += c.N
		}
	}
	for k, n := range cats {
		out.Categories = append(out.Categories, Count{k, n})
	}
	sortCounts(out.Categories)

	for _, g := range []struct {
		col  string
		into *[]Count
	}{{"source", &out.Sources}, {"kind", &out.Kinds}} {
		err := each(ctx, conn, "stats by "+g.col, `SELECT `+g.col+`, SUM(n) FROM case_stats_daily WHERE `+in+days+`
			GROUP BY `+g.col, args(q.From, q.To), func(sc scanner) error {
			var c Count
			if err := sc.Scan(&c.Key, &c.N); err != nil {
				return err
			}
			if c.N > 0 {
				*g.into = append(*g.into, c)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		sortCounts(*g.into)
	}

	bucket := "day"
	if q.Weekly {
		bucket = "(day + 3) / 7 * 7 - 3" // Day.Week
	}
	err = each(ctx, conn, "stats series", `SELECT `+bucket+` AS b, source, SUM(n) FROM case_stats_daily
		WHERE `+in+days+` GROUP BY b, source HAVING SUM(n) > 0 ORDER BY b, source`, args(q.From, q.To), func(sc scanner) error {
		var p SeriesPoint
		if err := sc.Scan(&p.Start, &p.Source, &p.N); err != nil {
			return err
		}
		out.Series = append(out.Series, p)
		return nil
	})
	if err != nil {
		return out, err
	}

	if n := out.Total.Answered; n > 0 {
		// The middle one or two of the answered cases' times, in order.
		var mid []int64
		err := each(ctx, conn, "stats median", `SELECT answered_at - created_at AS d FROM cases INDEXED BY cases_answer_time
			WHERE `+in+` AND answered_at IS NOT NULL AND merged_into = '' AND created_at >= ? AND created_at < ?
			ORDER BY d LIMIT ? OFFSET ?`, args(from, to, 2-n%2, (n-1)/2), func(sc scanner) error {
			var d int64
			if err := sc.Scan(&d); err != nil {
				return err
			}
			mid = append(mid, d)
			return nil
		})
		if err != nil {
			return out, err
		}
		if len(mid) > 0 {
			var sum int64
			for _, d := range mid {
				sum += d
			}
			out.AnswerMedian = time.Duration(sum / int64(len(mid)))
		}
	}
	return out, nil
}

// sortCounts orders counts most first, ties by key.
func sortCounts(cs []Count) {
	slices.SortFunc(cs, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// querier runs queries: *sql.DB, *sql.Conn, *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs a query on q and calls row for each row.
func each(ctx context.Context, q querier, op, query string, args []any, row func(scanner) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}
