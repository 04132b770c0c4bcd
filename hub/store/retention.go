package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxForgetBatch bounds the cases one ForgetPhones call handles, so one
// call never holds the write lock for long.
const MaxForgetBatch = 1000

// closedBefore is the SQL condition (on cases c, with the cutoff as ?1)
// under which a case's phones may be forgotten: it closed before the
// cutoff and, if it was merged into another case (which keeps the
// complaint going), that case closed before the cutoff too. It must keep
// the terms of the partial index cases_closed_phone.
const closedBefore = `c.state = 'closed' AND c.closed_at < ?1
	AND (c.merged_into = '' OR EXISTS (SELECT 1 FROM cases t WHERE t.id = c.merged_into AND t.state = 'closed' AND t.closed_at < ?1))`

// forgetCases and forgetComplainants select up to ?2 cases that closed
// before the cutoff ?1 and still hold a phone: in the case, or in a
// complainant (a merged-in one may have a phone when the case itself has
// none; a complainant joins a case before it closes). Each reads its
// partial index (cases_closed_phone, case_complainants_phone) oldest first
// and stops at the limit; CROSS JOIN keeps the planner from walking every
// case in id order for the DISTINCT instead.
const (
	forgetCases        = `SELECT c.id FROM cases c WHERE c.phone != '' AND ` + closedBefore + ` LIMIT ?2`
	forgetComplainants = `SELECT DISTINCT c.id FROM case_complainants p CROSS JOIN cases c ON c.id = p.case_id
		WHERE p.phone != '' AND p.added_at < ?1 AND ` + closedBefore + ` LIMIT ?2`
)

// ForgetPhones clears the residents' phone numbers of up to limit cases
// (at most and by default MaxForgetBatch) that closed before closedBefore:
// the case's phone, its complainants' phones, and the phone of every kiosk
// feedback record the case or its complainants came from. A case merged
// into another counts as closed once that case has closed. It runs in one
// write transaction and returns how many cases it changed; call it again
// until it returns 0. A case's updated_at is left as it is: forgetting is
// not a change of the case.
func (s *SQLite) ForgetPhones(ctx context.Context, closedBefore time.Time, limit int) (n int, err error) {
	if limit <= 0 || limit > MaxForgetBatch {
		limit = MaxForgetBatch
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: forget phones: begin: %w", err)
	}
	defer rollback(tx, &err)
	ids, err := forgetIDs(ctx, tx, closedBefore, limit)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	// The ids as numbered parameters, so a statement may name them twice.
	ps := make([]string, len(ids))
	for i := range ids {
		ps[i] = "?" + strconv.Itoa(i+1)
	}
	in := "(" + strings.Join(ps, ", ") + ")"
	steps := []struct{ what, query string }{
		{"feedback", `UPDATE feedback SET phone = '' WHERE phone != '' AND id IN (
			SELECT source_ref FROM case_complainants WHERE source = 'kiosk' AND case_id IN ` + in + `
			UNION SELECT source_ref FROM cases WHERE source = 'kiosk' AND id IN ` + in + `)`},
		{"complainants", `UPDATE case_complainants SET phone = '' WHERE phone != '' AND case_id IN ` + in},
		{"cases", `UPDATE cases SET phone = '' WHERE phone != '' AND id IN ` + in},
	}
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, st.query, ids...); err != nil {
			return 0, fmt.Errorf("store: forget phones: %s: %w", st.what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: forget phones: commit: %w", err)
	}
	return len(ids), nil
}

// forgetIDs returns the ids of the cases the next ForgetPhones call
// handles, at most limit, as query arguments.
func forgetIDs(ctx context.Context, tx *sql.Tx, closedBefore time.Time, limit int) ([]any, error) {
	var ids []any
	seen := make(map[string]bool)
	for _, q := range []string{forgetCases, forgetComplainants} {
		rows, err := tx.QueryContext(ctx, q, closedBefore.UnixNano(), limit)
		if err != nil {
			return nil, fmt.Errorf("store: forget phones: select: %w", err)
		}
		for rows.Next() && len(ids) < limit {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, errors.Join(fmt.Errorf("store: forget phones: select: %w", err), rows.Close())
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("store: forget phones: select: %w", err)
		}
	}
	return ids, nil
}
