package store

import "time"

// Statuses of a scheduled item (a notice or a playlist), as the API shows
// them.
const (
	StatusScheduled = "scheduled"
	StatusActive    = "active"
	StatusExpired   = "expired"
	StatusWithdrawn = "withdrawn"
)

// ScheduleStatus is the status at now of an item valid from from until
// until (zero: no end) and withdrawn at withdrawn (zero: not withdrawn).
func ScheduleStatus(from, until, withdrawn, now time.Time) string {
	switch {
	case !withdrawn.IsZero():
		return StatusWithdrawn
	case !until.IsZero() && !now.Before(until):
		return StatusExpired
	case now.Before(from):
		return StatusScheduled
	}
	return StatusActive
}
