package store

import (
	"context"
	"fmt"
)

// BulkInsertCases stores many new cases in one transaction, each with its
// first complainant (its own record, as InsertCase stores it), and the
// timeline events evs (of any of the cases, in order). It is for seeding
// and imports: unlike InsertCase it does not look for a case with the
// same source and source reference first, so a repeated one fails the
// whole batch and nothing is stored.
func (s *SQLite) BulkInsertCases(ctx context.Context, cs []CaseRecord, evs []CaseEvent) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: bulk insert cases: begin: %w", err)
	}
	defer rollback(tx, &err)
	insCase, err := tx.PrepareContext(ctx, `INSERT INTO cases (`+caseCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: bulk insert cases: prepare: %w", err)
	}
	defer insCase.Close()
	insComp, err := tx.PrepareContext(ctx, `INSERT INTO case_complainants (case_id, source, source_ref, phone, added_at)
		VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: bulk insert cases: prepare: %w", err)
	}
	defer insComp.Close()
	insEv, err := tx.PrepareContext(ctx, `INSERT INTO case_events (case_id, at, actor, role, action, from_state, to_state, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: bulk insert cases: prepare: %w", err)
	}
	defer insEv.Close()
	for _, c := range cs {
		if _, err := insCase.ExecContext(ctx, caseArgs(c)...); err != nil {
			return fmt.Errorf("store: bulk insert case %s: %w", c.ID, err)
		}
		if _, err := insComp.ExecContext(ctx, c.ID, c.Source, c.SourceRef, c.Phone, nanos(c.CreatedAt)); err != nil {
			return fmt.Errorf("store: bulk insert case %s: complainant: %w", c.ID, err)
		}
	}
	for _, e := range evs {
		if _, err := insEv.ExecContext(ctx, e.CaseID, nanos(e.At), e.Actor, e.Role, e.Action, e.From, e.To, e.Note); err != nil {
			return fmt.Errorf("store: bulk insert cases: event %s of %s: %w", e.Action, e.CaseID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: bulk insert cases: commit: %w", err)
	}
	return nil
}
