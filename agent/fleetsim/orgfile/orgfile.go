// Package orgfile writes and reads org-tree files (the hub's format,
// version 1) for simulated fleets: Generate builds a tree with n kiosks
// spread over districts, streets and communities, and Parse reads the kiosk
// ids and the root of any org file.
//
// The agent side may not import the hub, so this package mirrors the part of
// the format it needs; the hub's orgtree package stays the authority, and
// the tests check that the hub accepts every generated file.
package orgfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/shequ/shequ/protocol"
)

// FormatVersion is the org file format version written and read.
const FormatVersion = 1

// MaxFileSize bounds an org file (the hub's own limit).
const MaxFileSize = 4 << 20

// Shape of a generated tree: a community holds KiosksPerCommunity kiosks, a
// street CommunitiesPerStreet communities, a district StreetsPerDistrict
// streets, so a district holds 100 kiosks.
const (
	KiosksPerCommunity   = 4
	CommunitiesPerStreet = 5
	StreetsPerDistrict   = 5
)

// MaxKiosks bounds Generate, so a generated file stays within MaxFileSize.
const MaxKiosks = 10000

// ErrInvalid means an org file could not be read or breaks a tree rule
// this package checks.
var ErrInvalid = errors.New("orgfile: invalid org file")

// Node is one node of the tree in the file format.
type Node struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Level    protocol.Level `json:"level"`
	Station  *Station       `json:"station,omitempty"`
	Children []*Node        `json:"children,omitempty"`
}

// Station is a community's workstation in the file format.
type Station struct {
	Name        string `json:"name"`
	Address     string `json:"address,omitempty"`
	Hours       string `json:"hours,omitempty"`
	Contact     string `json:"contact,omitempty"`
	DutyOfficer string `json:"duty_officer,omitempty"`
}

// File is a whole org file.
type File struct {
	Version int   `json:"version"`
	Root    *Node `json:"root"`
}

// KioskIDs returns the ids Generate gives n kiosks: "k-0001" … with at
// least four digits, so they sort in order and are valid ticket codes.
func KioskIDs(n int) []string {
	width := max(4, len(fmt.Sprint(n)))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("k-%0*d", width, i+1)
	}
	return ids
}

// Generate returns an org file with n kiosks (ids from KioskIDs) under the
// city "shanghai", indented for people to read.
func Generate(n int) ([]byte, error) {
	if n < 1 || n > MaxKiosks {
		return nil, fmt.Errorf("orgfile: generate: %d kiosks, want 1-%d", n, MaxKiosks)
	}
	root := &Node{ID: "shanghai", Name: "上海市", Level: protocol.LevelCity}
	var district, street, community *Node
	for i, id := range KioskIDs(n) {
		if i%(KiosksPerCommunity*CommunitiesPerStreet*StreetsPerDistrict) == 0 {
			d := len(root.Children) + 1
			district = &Node{ID: fmt.Sprintf("d-%02d", d), Name: fmt.Sprintf("模拟第%d区", d), Level: protocol.LevelDistrict}
			root.Children = append(root.Children, district)
		}
		if i%(KiosksPerCommunity*CommunitiesPerStreet) == 0 {
			s := len(district.Children) + 1
			street = &Node{ID: fmt.Sprintf("%s-s%d", district.ID, s), Name: fmt.Sprintf("%s第%d街道", district.Name, s), Level: protocol.LevelStreet}
			district.Children = append(district.Children, street)
		}
		if i%KiosksPerCommunity == 0 {
			c := len(street.Children) + 1
			name := fmt.Sprintf("%s第%d居委", street.Name, c)
			community = &Node{
				ID: fmt.Sprintf("%s-c%d", street.ID, c), Name: name, Level: protocol.LevelCommunity,
				Station: &Station{
					Name:        name + "城管执法工作室",
					Address:     name + "居委会一楼",
					Hours:       "周一至周五 9:00-17:00",
					Contact:     fmt.Sprintf("021-6%07d", i/KiosksPerCommunity+1),
					DutyOfficer: "值班队员",
				},
			}
			street.Children = append(street.Children, community)
		}
		community.Children = append(community.Children, &Node{
			ID: id, Name: fmt.Sprintf("%s%d号机", community.Name, len(community.Children)+1), Level: protocol.LevelKiosk,
		})
	}
	b, err := json.MarshalIndent(File{Version: FormatVersion, Root: root}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("orgfile: generate: %w", err)
	}
	return append(b, '\n'), nil
}

// Tree is what Parse reads from an org file.
type Tree struct {
	Root   protocol.Target // the root node, a notice target reaching every kiosk
	Kiosks []string        // kiosk ids in file order
}

// Parse reads the root and the kiosk ids of an org file. It checks the
// format version, node ids and levels (each child exactly one level below
// its parent, unique ids), not names or stations, and ignores fields it does
// not know, so it reads files of the hub's format as it grows.
func Parse(data []byte) (Tree, error) {
	if len(data) > MaxFileSize {
		return Tree{}, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(data), MaxFileSize)
	}
	var f File
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&f); err != nil {
		return Tree{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return Tree{}, fmt.Errorf("%w: trailing data after the JSON value", ErrInvalid)
	}
	if f.Version != FormatVersion {
		return Tree{}, fmt.Errorf("%w: version %d, this build reads %d", ErrInvalid, f.Version, FormatVersion)
	}
	if f.Root == nil {
		return Tree{}, fmt.Errorf("%w: root is missing", ErrInvalid)
	}
	if f.Root.Level == protocol.LevelKiosk {
		return Tree{}, fmt.Errorf("%w: the root must not be a kiosk", ErrInvalid)
	}
	t := Tree{Root: protocol.Target{Level: f.Root.Level, ID: f.Root.ID}}
	seen := make(map[string]bool)
	if err := walk(f.Root, -1, seen, &t.Kiosks); err != nil {
		return Tree{}, err
	}
	return t, nil
}

func levelIndex(l protocol.Level) int {
	for i, v := range protocol.Levels {
		if v == l {
			return i
		}
	}
	return -1
}

func walk(n *Node, parentLevel int, seen map[string]bool, kiosks *[]string) error {
	if n == nil {
		return fmt.Errorf("%w: null node", ErrInvalid)
	}
	if err := protocol.ValidID(n.ID); err != nil {
		return fmt.Errorf("%w: node id: %v", ErrInvalid, err)
	}
	if seen[n.ID] {
		return fmt.Errorf("%w: id %q appears twice", ErrInvalid, n.ID)
	}
	seen[n.ID] = true
	li := levelIndex(n.Level)
	if li < 0 {
		return fmt.Errorf("%w: node %q: unknown level %q", ErrInvalid, n.ID, n.Level)
	}
	if parentLevel >= 0 && li != parentLevel+1 {
		return fmt.Errorf("%w: node %q (%s) is not one level below its parent", ErrInvalid, n.ID, n.Level)
	}
	if n.Level == protocol.LevelKiosk {
		*kiosks = append(*kiosks, n.ID)
	}
	for _, c := range n.Children {
		if err := walk(c, li, seen, kiosks); err != nil {
			return err
		}
	}
	return nil
}
