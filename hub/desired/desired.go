// Package desired computes the desired-state document of each kiosk: the
// live notices aimed at the kiosk or any node above it in the org tree, the
// workstation of its community, and the playlists aimed at it with the
// media files they need. It also hashes a document's content so
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
	// Playlists in precedence order (most specific target first, then
	// newest) and the media they need, in first-use order.
	Playlists []protocol.Playlist
	Media     []protocol.MediaRef
	// Dropped lists notices and playlists aimed at the kiosk that did not
	// fit under the protocol's limits (lowest priority and oldest first).
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
		Station   protocol.Station    `json:"station"`
		Notices   []protocol.Notice   `json:"notices"`
		Playlists []protocol.Playlist `json:"playlists,omitempty"`
		Media     []protocol.MediaRef `json:"media,omitempty"`
	}{d.Station, d.Notices, d.Playlists, d.Media})
	if err != nil {
		return "", fmt.Errorf("desired: hash %s: %w", d.Kiosk, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// State returns the document as the wire type with a version.
func (d Doc) State(version int64) protocol.DesiredState {
	return protocol.DesiredState{Kiosk: d.Kiosk, Version: version, Station: d.Station, Notices: d.Notices,
		Playlists: d.Playlists, Media: d.Media}
}

// AddPlaylists adds the live playlists aimed at the kiosk or any node above
// it (expired ones are left out, scheduled ones kept), in precedence order:
// the most specific target first (a playlist for the kiosk itself before
// one for its community, and so on), then the newest (latest valid_from).
// refs gives the media reference of every file the playlists play; a
// playlist with a file missing from refs is left out (Dropped), as are
// playlists beyond protocol.MaxPlaylists, protocol.MaxMedia or the size limit.
func (d *Doc) AddPlaylists(tree *orgtree.Tree, live []protocol.Playlist, refs map[string]protocol.MediaRef, now time.Time) {
	depth := make(map[protocol.Target]int)
	for i, t := range tree.Ancestors(d.Kiosk) {
		depth[t] = i + 1
	}
	type cand struct {
		p    protocol.Playlist
		spec int
	}
	var cands []cand
	for _, p := range live {
		if !p.ValidUntil.IsZero() && !now.Before(p.ValidUntil) {
			continue
		}
		spec := 0
		for _, t := range p.Targets {
			spec = max(spec, depth[t])
		}
		if spec > 0 {
			cands = append(cands, cand{p, spec})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(-cmp.Compare(a.spec, b.spec), -a.p.ValidFrom.Compare(b.p.ValidFrom), cmp.Compare(a.p.ID, b.p.ID))
	})
	size := 0
	for _, n := range d.Notices {
		if b, err := json.Marshal(n); err == nil {
			size += len(b) + 1
		}
	}
	seen := map[string]bool{}
	for _, c := range cands {
		var add []protocol.MediaRef
		ok := len(d.Playlists) < protocol.MaxPlaylists
		for _, it := range c.p.Items {
			if !ok || it.Kind == protocol.ItemNotice || seen[it.Media] || slices.ContainsFunc(add, func(r protocol.MediaRef) bool { return r.SHA256 == it.Media }) {
				continue
			}
			ref, found := refs[it.Media]
			if !found {
				ok = false
				break
			}
			add = append(add, ref)
		}
		if ok && len(d.Media)+len(add) > protocol.MaxMedia {
			ok = false
		}
		var extra int
		if ok {
			b, err := json.Marshal(struct {
				P protocol.Playlist
				M []protocol.MediaRef
			}{c.p, add})
			extra = len(b) + 1
			ok = err == nil && size+extra <= protocol.MaxDesiredSize-envelopeReserve
		}
		if !ok {
			d.Dropped = append(d.Dropped, c.p.ID)
			continue
		}
		size += extra
		d.Playlists = append(d.Playlists, c.p)
		for _, r := range add {
			seen[r.SHA256] = true
			d.Media = append(d.Media, r)
		}
	}
}

// Files returns the set of media files the document references.
func (d Doc) Files() map[string]bool {
	out := make(map[string]bool, len(d.Media))
	for _, m := range d.Media {
		out[m.SHA256] = true
	}
	return out
}
