package cases

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Work record limits.
const (
	MaxWorkNote   = 2000 // runes
	MaxWorkPhotos = 6
)

// WorkStates are the states in which work may be recorded on a case.
var WorkStates = []State{StateDispatched, StateInProgress, StateReturned, StateAnswered}

// AddWork records work on a case (线上工作记录): a note and photos already
// made safe (resized, metadata stripped; see hub/photo). Only those who
// handle the case may (Handles), while it is being handled (WorkStates).
func (s *Service) AddWork(ctx context.Context, caseID string, actor Scope, note string, photos []store.Photo) (store.WorkRecord, error) {
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return store.WorkRecord{}, fmt.Errorf("cases: work on %s: %w", caseID, err)
	}
	switch {
	case actor == nil || !Handles(c, actor) || actor.Role() == RoleSystem:
		return store.WorkRecord{}, fmt.Errorf("cases: work on %s: %w", caseID, ErrNotInScope)
	case !slices.Contains(WorkStates, State(c.State)):
		return store.WorkRecord{}, fmt.Errorf("%w: cannot record work on a case that is %s", ErrForbiddenTransition, c.State)
	case note == "" && len(photos) == 0:
		return store.WorkRecord{}, fmt.Errorf("%w: a work record needs a note or a photo", ErrInvalid)
	case utf8.RuneCountInString(note) > MaxWorkNote:
		return store.WorkRecord{}, fmt.Errorf("%w: note longer than %d characters", ErrInvalid, MaxWorkNote)
	case len(photos) > MaxWorkPhotos:
		return store.WorkRecord{}, fmt.Errorf("%w: %d photos, at most %d", ErrInvalid, len(photos), MaxWorkPhotos)
	}
	w := store.WorkRecord{ID: protocol.NewID(), CaseID: c.ID, At: s.now(), Actor: actor.ID(), Note: note}
	if err := s.cfg.Store.AddWork(ctx, w, photos); err != nil {
		return w, fmt.Errorf("cases: work on %s: %w", caseID, err)
	}
	for _, p := range photos {
		w.Photos = append(w.Photos, p.PhotoRef)
	}
	s.changed(ctx, c)
	return w, nil
}

// Work returns a case's work records for a scope that can see it.
func (s *Service) Work(ctx context.Context, caseID string, sc Scope) ([]store.WorkRecord, error) {
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return nil, fmt.Errorf("cases: work on %s: %w", caseID, err)
	}
	if !sc.CanSee(c.Community) {
		return nil, fmt.Errorf("cases: work on %s: %w", caseID, ErrNotInScope)
	}
	ws, err := s.cfg.Store.CaseWork(ctx, caseID)
	if err != nil {
		return nil, fmt.Errorf("cases: work on %s: %w", caseID, err)
	}
	return ws, nil
}

// Photo returns a photo of a case for a scope that can see the case.
func (s *Service) Photo(ctx context.Context, caseID, sha string, sc Scope) (store.Photo, error) {
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return store.Photo{}, fmt.Errorf("cases: photo of %s: %w", caseID, err)
	}
	if !sc.CanSee(c.Community) {
		return store.Photo{}, fmt.Errorf("cases: photo of %s: %w", caseID, ErrNotInScope)
	}
	p, err := s.cfg.Store.CasePhoto(ctx, caseID, sha)
	if err != nil {
		return p, fmt.Errorf("cases: photo of %s: %w", caseID, err)
	}
	return p, nil
}

// AddReportPhotos stores the photos a complainant sent with the report as
// a work record by RoleResident (at most MaxWorkPhotos), whatever the
// case's state; the reporting flow (城管码 pages, Open311) calls it right
// after Create.
func (s *Service) AddReportPhotos(ctx context.Context, caseID string, photos []store.Photo) (store.WorkRecord, error) {
	if len(photos) == 0 || len(photos) > MaxWorkPhotos {
		return store.WorkRecord{}, fmt.Errorf("%w: %d photos, want 1 to %d", ErrInvalid, len(photos), MaxWorkPhotos)
	}
	w := store.WorkRecord{ID: protocol.NewID(), CaseID: caseID, At: s.now(), Actor: RoleResident, Note: "反映人上传的照片"}
	if err := s.cfg.Store.AddWork(ctx, w, photos); err != nil {
		return w, fmt.Errorf("cases: photos of %s: %w", caseID, err)
	}
	for _, p := range photos {
		w.Photos = append(w.Photos, p.PhotoRef)
	}
	return w, nil
}
