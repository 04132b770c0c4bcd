// Package orgtree loads the organisation tree (city → district → street →
// community → kiosk) from a JSON file and answers questions about it: which
// kiosks exist, which nodes a kiosk belongs to, which kiosks a set of notice
// targets reaches, and which workstation a kiosk stands in.
//
// The file format (version 1):
//
//	{
//	  "version": 1,
//	  "root": {
//	    "id": "shanghai", "name": "上海市", "level": "city",
//	    "children": [
//	      {"id": "huangpu", "name": "黄浦区", "level": "district", "children": [
//	        {"id": "wuliqiao", "name": "五里桥街道", "level": "street", "children": [
//	          {"id": "sangcheng", "name": "桑城居委", "level": "community",
//	           "station": {"name": "桑城社区城管执法工作室", "address": "...",
//	                       "hours": "...", "contact": "...", "duty_officer": "..."},
//	           "children": [{"id": "k-sangcheng-01", "name": "...", "level": "kiosk"}]}]}]}]
//	  }
//	}
//
// Each child is exactly one level below its parent; kiosks therefore stand
// only under communities, and every community carries its workstation.
package orgtree

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"unicode/utf8"

	"github.com/shequ/shequ/protocol"
	"github.com/shequ/shequ/protocol/glyphs"
)

// FormatVersion is the version of the org file format this package reads.
const FormatVersion = 1

// MaxFileSize bounds an org file.
const MaxFileSize = 4 << 20

// MaxName bounds a node name, in characters.
const MaxName = 100

// Errors returned (wrapped) by this package.
var (
	// ErrInvalid means the org file is malformed or violates a tree rule.
	ErrInvalid = errors.New("orgtree: invalid org tree")
	// ErrUnknownNode means an id names no node of the tree.
	ErrUnknownNode = errors.New("orgtree: unknown node")
	// ErrLevel means a target names a node with a different level.
	ErrLevel = errors.New("orgtree: wrong level")
)

// StationInfo is a community's workstation as written in the org file.
type StationInfo struct {
	Name        string `json:"name"`
	Address     string `json:"address,omitempty"`
	Hours       string `json:"hours,omitempty"`
	Contact     string `json:"contact,omitempty"`
	DutyOfficer string `json:"duty_officer,omitempty"`
}

// Node is one node of the tree.
type Node struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Level    protocol.Level `json:"level"`
	Station  *StationInfo   `json:"station,omitempty"` // communities only
	Children []*Node        `json:"children,omitempty"`

	parent *Node
}

// Parent returns the node's parent, nil for the root.
func (n *Node) Parent() *Node { return n.parent }

// Kiosk is a kiosk of the tree with the community it stands in.
type Kiosk struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Community     string `json:"community"`
	CommunityName string `json:"community_name"`
}

// Tree is a validated org tree. It is immutable and safe for concurrent use.
type Tree struct {
	root   *Node
	byID   map[string]*Node
	kiosks []Kiosk
}

type file struct {
	Version int   `json:"version"`
	Root    *Node `json:"root"`
}

// Load reads and validates an org file.
func Load(path string) (*Tree, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("orgtree: open: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("orgtree: read %s: %w", path, err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes and validates an org file's contents. Unknown fields are
// rejected.
func Parse(data []byte) (*Tree, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: file is %d bytes, limit %d", ErrInvalid, len(data), MaxFileSize)
	}
	var f file
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after JSON value", ErrInvalid)
	}
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrInvalid, f.Version, FormatVersion)
	}
	if f.Root == nil {
		return nil, fmt.Errorf("%w: root is missing", ErrInvalid)
	}
	t := &Tree{root: f.Root, byID: make(map[string]*Node)}
	if err := t.add(f.Root, nil, 0); err != nil {
		return nil, err
	}
	return t, nil
}

func levelIndex(l protocol.Level) int { return slices.Index(protocol.Levels, l) }

// maxDepth bounds recursion on hostile input; a valid tree has at most
// len(protocol.Levels) levels.
var maxDepth = len(protocol.Levels)

func (t *Tree) add(n, parent *Node, depth int) error {
	if n == nil {
		return fmt.Errorf("%w: null node", ErrInvalid)
	}
	if depth >= maxDepth {
		return fmt.Errorf("%w: tree deeper than %d levels", ErrInvalid, maxDepth)
	}
	if err := protocol.ValidID(n.ID); err != nil {
		return fmt.Errorf("%w: node id: %v", ErrInvalid, err)
	}
	if _, dup := t.byID[n.ID]; dup {
		return fmt.Errorf("%w: id %q appears twice", ErrInvalid, n.ID)
	}
	if n.Name == "" || !utf8.ValidString(n.Name) || utf8.RuneCountInString(n.Name) > MaxName {
		return fmt.Errorf("%w: node %q: name must be 1-%d characters of UTF-8", ErrInvalid, n.ID, MaxName)
	}
	li := levelIndex(n.Level)
	if li < 0 {
		return fmt.Errorf("%w: node %q: level %q is not one of %v", ErrInvalid, n.ID, n.Level, protocol.Levels)
	}
	if parent == nil && n.Level == protocol.LevelKiosk {
		return fmt.Errorf("%w: root %q must not be a kiosk", ErrInvalid, n.ID)
	}
	if parent != nil && li != levelIndex(parent.Level)+1 {
		return fmt.Errorf("%w: node %q (%s) under %q (%s): each child must be exactly one level below its parent",
			ErrInvalid, n.ID, n.Level, parent.ID, parent.Level)
	}
	switch {
	case n.Level == protocol.LevelCommunity && n.Station == nil:
		return fmt.Errorf("%w: community %q has no station", ErrInvalid, n.ID)
	case n.Level != protocol.LevelCommunity && n.Station != nil:
		return fmt.Errorf("%w: node %q (%s): only communities carry a station", ErrInvalid, n.ID, n.Level)
	}
	n.parent = parent
	t.byID[n.ID] = n
	if n.Level == protocol.LevelCommunity {
		st := t.station(n)
		if err := st.Validate(); err != nil {
			return fmt.Errorf("%w: community %q: %v", ErrInvalid, n.ID, err)
		}
		// The kiosks of the community show its station on every screen.
		if err := errors.Join(glyphs.Check("name", n.Name), glyphs.Check("station name", st.Name),
			glyphs.Check("station address", st.Address), glyphs.Check("station hours", st.Hours),
			glyphs.Check("station contact", st.Contact), glyphs.Check("station duty_officer", st.DutyOfficer)); err != nil {
			return fmt.Errorf("%w: community %q: %v", ErrInvalid, n.ID, err)
		}
	}
	if n.Level == protocol.LevelKiosk {
		t.kiosks = append(t.kiosks, Kiosk{ID: n.ID, Name: n.Name, Community: parent.ID, CommunityName: parent.Name})
	}
	for _, c := range n.Children {
		if err := t.add(c, n, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) station(community *Node) protocol.Station {
	s := community.Station
	return protocol.Station{
		Name: s.Name, Community: community.ID, CommunityName: community.Name,
		Address: s.Address, Hours: s.Hours, Contact: s.Contact, DutyOfficer: s.DutyOfficer,
	}
}

// Root returns the root node.
func (t *Tree) Root() *Node { return t.root }

// MarshalJSON encodes the tree in the org file format.
func (t *Tree) MarshalJSON() ([]byte, error) {
	return json.Marshal(file{Version: FormatVersion, Root: t.root})
}

// Kiosks returns every kiosk in file order.
func (t *Tree) Kiosks() []Kiosk { return slices.Clone(t.kiosks) }

// Node returns the node with the id, or nil.
func (t *Tree) Node(id string) *Node { return t.byID[id] }

// Kiosk returns the kiosk with the id.
func (t *Tree) Kiosk(id string) (Kiosk, bool) {
	n := t.byID[id]
	if n == nil || n.Level != protocol.LevelKiosk {
		return Kiosk{}, false
	}
	return Kiosk{ID: n.ID, Name: n.Name, Community: n.parent.ID, CommunityName: n.parent.Name}, true
}

// Ancestors returns the path from the root down to the kiosk, the kiosk
// included, as targets. It returns nil for an id that is not a kiosk.
func (t *Tree) Ancestors(kioskID string) []protocol.Target {
	n := t.byID[kioskID]
	if n == nil || n.Level != protocol.LevelKiosk {
		return nil
	}
	var out []protocol.Target
	for ; n != nil; n = n.parent {
		out = append(out, protocol.Target{Level: n.Level, ID: n.ID})
	}
	slices.Reverse(out)
	return out
}

// Station returns the workstation of the community the kiosk stands in, or
// the zero Station for an id that is not a kiosk.
func (t *Tree) Station(kioskID string) protocol.Station {
	n := t.byID[kioskID]
	if n == nil || n.Level != protocol.LevelKiosk {
		return protocol.Station{}
	}
	return t.station(n.parent)
}

// Resolve returns the sorted, de-duplicated ids of the kiosks the targets
// reach. It fails on a target naming an unknown node or a node of another
// level.
func (t *Tree) Resolve(targets []protocol.Target) ([]string, error) {
	var out []string
	for _, tg := range targets {
		n := t.byID[tg.ID]
		if n == nil {
			return nil, fmt.Errorf("%w: %s %q", ErrUnknownNode, tg.Level, tg.ID)
		}
		if n.Level != tg.Level {
			return nil, fmt.Errorf("%w: %q is a %s, not a %s", ErrLevel, tg.ID, n.Level, tg.Level)
		}
		out = appendKiosks(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func appendKiosks(out []string, n *Node) []string {
	if n.Level == protocol.LevelKiosk {
		return append(out, n.ID)
	}
	for _, c := range n.Children {
		out = appendKiosks(out, c)
	}
	return out
}
