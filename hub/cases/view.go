package cases

import (
	"context"
	"fmt"

	"github.com/shequ/shequ/hub/store"
)

// Handles reports whether the scope handles the case and so may see the
// complainants' phone numbers: the assigned officer, a squad leader over
// its community, the admins of its district or the city, and System.
func Handles(c Case, sc Scope) bool {
	switch sc.Role() {
	case RoleSystem:
		return true
	case RoleOfficer:
		return c.Assignee != "" && c.Assignee == sc.ID() && sc.CanSee(c.Community)
	case RoleSquadLeader, RoleDistrictAdmin, RoleBureauAdmin:
		return sc.CanSee(c.Community)
	}
	return false
}

// View returns the case as the scope may see it: the phone masked (e.g.
// 138****8000) unless the scope handles the case.
func View(c Case, sc Scope) Case {
	if !Handles(c, sc) {
		c.Phone = MaskPhone(c.Phone)
	}
	return c
}

// MaskPhone keeps the first three and last four digits of a number and
// masks the rest with four asterisks; a number of seven characters or
// fewer is masked whole.
func MaskPhone(p string) string {
	r := []rune(p)
	switch {
	case len(r) == 0:
		return ""
	case len(r) <= 7:
		return "****"
	}
	return string(r[:3]) + "****" + string(r[len(r)-4:])
}

// Detail is a case with its complainants and timeline, as one scope sees it.
type Detail struct {
	Case         Case
	Complainants []store.Complainant
	Timeline     []store.CaseEvent
	PhoneMasked  bool
}

// Detail returns a case with its complainants and timeline for a scope
// that can see its community (ErrNotInScope otherwise), phones masked
// unless the scope handles it.
func (s *Service) Detail(ctx context.Context, caseID string, sc Scope) (Detail, error) {
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return Detail{}, fmt.Errorf("cases: detail %s: %w", caseID, err)
	}
	if !sc.CanSee(c.Community) {
		return Detail{}, fmt.Errorf("cases: detail %s: %w", caseID, ErrNotInScope)
	}
	d := Detail{Case: View(c, sc), PhoneMasked: !Handles(c, sc)}
	if d.Complainants, err = s.cfg.Store.CaseComplainants(ctx, caseID); err != nil {
		return Detail{}, fmt.Errorf("cases: detail %s: %w", caseID, err)
	}
	if d.PhoneMasked {
		for i := range d.Complainants {
			d.Complainants[i].Phone = MaskPhone(d.Complainants[i].Phone)
		}
	}
	if d.Timeline, err = s.cfg.Store.CaseEvents(ctx, caseID); err != nil {
		return Detail{}, fmt.Errorf("cases: detail %s: %w", caseID, err)
	}
	return d, nil
}
