// Package desired computes the desired-state document of each kiosk: the
// live notices aimed at the kiosk or any node above it in the org tree, and
// the workstation of its community. It also hashes a document's content so
// the hub bumps a kiosk's version only when what it should hold changes.
package desired

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

// envelopeReserve is room kept under protocol.MaxDesiredSize for the
// envelope, the station and the document's other fields.
const envelopeReserve = 8 << 10

// Doc is a kiosk's desired document before it gets a version.
type Doc struct {
	Kiosk   string
	Station protocol.Station
	Notices []protocol.Notice
	// Dropped lists notices aimed at the kiosk that did not fit under
	// protocol.MaxNotices or protocol.MaxDesiredSize (lowest priority and
	// oldest first).
	Dropped []string
}

// Build returns the document of one kiosk. live holds the notices neither
// withdrawn nor expired; notices that expired before now are left out too,
// scheduled ones are kept so the kiosk can show them on time while offline.
// The notices are ordered by priority (highest first), then newest first.
func Build(tree *orgtree.Tree, kiosk string, live []protocol.Notice, now time.Time) Doc {
	d := Doc{Kiosk: kiosk, Station: tree.Station(kiosk), Notices: []protocol.Notice{}}
	mine := make(map[protocol.Target]bool)
	for _, t := range tree.Ancestors(kiosk) {
		mine[t] = true
	}
	for _, n := range live {
		if !n.ValidUntil.IsZero() && !now.Before(n.ValidUntil) {
			continue
		}
		if slices.ContainsFunc(n.Targets, func(t protocol.Target) bool { return mine[t] }) {
			d.Notices = append(d.Notices, n)
		}
	}
	slices.SortFunc(d.Notices, func(a, b protocol.Notice) int {
		return cmp.Or(
			-cmp.Compare(slices.Index(protocol.Priorities, a.Priority), slices.Index(protocol.Priorities, b.Priority)),
			-a.ValidFrom.Compare(b.ValidFrom),
			cmp.Compare(a.ID, b.ID),
		)
	})
	keep := min(len(d.Notices), protocol.MaxNotices)
	size := 0
	for i, n := range d.Notices[:keep] {
		b, err := json.Marshal(n)
		if err != nil {
			// A protocol.Notice always marshals; treat the impossible as "does not fit".
			keep = i
			break
		}
		if size+len(b)+1 > protocol.MaxDesiredSize-envelopeReserve {
			keep = i
			break
		}
		size += len(b) + 1
	}
	for _, n := range d.Notices[keep:] {
		d.Dropped = append(d.Dropped, n.ID)
	}
	d.Notices = d.Notices[:keep]
	return d
}

// Hash returns a digest of the document's content (station and notices).
func (d Doc) Hash() (string, error) {
	b, err := json.Marshal(struct {
		Station protocol.Station  `json:"station"`
		Notices []protocol.Notice `json:"notices"`
	}{d.Station, d.Notices})
	if err != nil {
		return "", fmt.Errorf("desired: hash %s: %w", d.Kiosk, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// State returns the document as the wire type with a version.
func (d Doc) State(version int64) protocol.DesiredState {
	return protocol.DesiredState{Kiosk: d.Kiosk, Version: version, Station: d.Station, Notices: d.Notices}
}
