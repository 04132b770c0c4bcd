package protocol

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Level is a level of the org tree, from the whole city down to one kiosk.
type Level string

// Org-tree levels, top to bottom.
const (
	LevelCity      Level = "city"
	LevelDistrict  Level = "district"
	LevelStreet    Level = "street" // street or town (街道/镇)
	LevelCommunity Level = "community"
	LevelKiosk     Level = "kiosk"
)

// Levels lists the org-tree levels from top to bottom.
var Levels = []Level{LevelCity, LevelDistrict, LevelStreet, LevelCommunity, LevelKiosk}

// NoticeCategory says what a notice is about.
type NoticeCategory string

// Notice categories.
const (
	NoticePublicity   NoticeCategory = "publicity"   // 宣传
	NoticeLawCase     NoticeCategory = "law_case"    // 以案释法
	NoticeEnforcement NoticeCategory = "enforcement" // 专项执法行动
	NoticeEvent       NoticeCategory = "event"       // 活动
	NoticeStation     NoticeCategory = "station"     // 工作室信息
)

// NoticeCategories lists every notice category.
var NoticeCategories = []NoticeCategory{NoticePublicity, NoticeLawCase, NoticeEnforcement, NoticeEvent, NoticeStation}

// Priority of a notice. An urgent notice takes over the kiosk screen.
type Priority string

// Priorities.
const (
	PriorityNormal    Priority = "normal"
	PriorityImportant Priority = "important"
	PriorityUrgent    Priority = "urgent"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityNormal, PriorityImportant, PriorityUrgent}

// FeedbackKind is what a resident wants: 投诉/咨询/求助/建议.
type FeedbackKind string

// Feedback kinds.
const (
	KindComplaint    FeedbackKind = "complaint"    // 投诉
	KindConsultation FeedbackKind = "consultation" // 咨询
	KindHelp         FeedbackKind = "help"         // 求助
	KindSuggestion   FeedbackKind = "suggestion"   // 建议
)

// FeedbackKinds lists every feedback kind.
var FeedbackKinds = []FeedbackKind{KindComplaint, KindConsultation, KindHelp, KindSuggestion}

// FeedbackCategory is the problem a feedback is about (the seed notice's list).
type FeedbackCategory string

// Feedback categories.
const (
	CatIllegalConstruction FeedbackCategory = "illegal_construction" // 违法搭建
	CatLoadBearing         FeedbackCategory = "load_bearing"         // 破坏房屋承重结构
	CatChangeOfUse         FeedbackCategory = "change_of_use"        // 擅自改变物业使用性质
	CatFacade              FeedbackCategory = "facade"               // 破坏房屋外貌
	CatIllegalRenting      FeedbackCategory = "illegal_renting"      // 房屋违规租赁
	CatGreenSpace          FeedbackCategory = "green_space"          // 占绿毁绿
	CatPropertyDuty        FeedbackCategory = "property_duty"        // 物业未履职尽责
	CatOther               FeedbackCategory = "other"                // 其他
)

// FeedbackCategories lists every feedback category in the seed's order.
var FeedbackCategories = []FeedbackCategory{
	CatIllegalConstruction, CatLoadBearing, CatChangeOfUse, CatFacade,
	CatIllegalRenting, CatGreenSpace, CatPropertyDuty, CatOther,
}

// AckStatus is the hub's verdict on an uplink record.
type AckStatus string

// Ack statuses. Stored and Duplicate both mean the record is durable at the
// hub and the agent may delete it; Rejected means the hub will never accept
// it (the agent moves it aside rather than resending forever).
const (
	AckStored    AckStatus = "stored"
	AckDuplicate AckStatus = "duplicate"
	AckRejected  AckStatus = "rejected"
)

// PresenceState is online or offline.
type PresenceState string

// Presence states.
const (
	Online  PresenceState = "online"
	Offline PresenceState = "offline"
)

// Field limits (in characters unless stated).
const (
	MaxTitle       = 100
	MaxNoticeBody  = 4000
	MaxTargets     = 200
	MaxNotices     = 200
	MaxDescription = 1000
	MaxWhereField  = 16
	MaxStationText = 200
	MaxReason      = 200
	MaxVersionText = 64
	MaxTicket      = 40
)

// Target is one node of the org tree a notice is aimed at.
type Target struct {
	Level Level  `json:"level"`
	ID    string `json:"id"`
}

// Notice is an announcement shown on kiosks.
type Notice struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Body       string         `json:"body"`
	Category   NoticeCategory `json:"category"`
	Priority   Priority       `json:"priority"`
	ValidFrom  time.Time      `json:"valid_from"`
	ValidUntil time.Time      `json:"valid_until,omitzero"` // zero: no end
	Targets    []Target       `json:"targets"`
}

// Active reports whether the notice should be shown at t.
func (n Notice) Active(t time.Time) bool {
	return !t.Before(n.ValidFrom) && (n.ValidUntil.IsZero() || t.Before(n.ValidUntil))
}

// Station describes the community workstation a kiosk stands in.
type Station struct {
	Name          string `json:"name"`
	Community     string `json:"community"`      // org-tree id of the community
	CommunityName string `json:"community_name"` //
	Address       string `json:"address,omitempty"`
	Hours         string `json:"hours,omitempty"`
	Contact       string `json:"contact,omitempty"`
	DutyOfficer   string `json:"duty_officer,omitempty"`
}

// DesiredState is the whole document of what one kiosk should hold. The
// agent replaces what it holds with it; a document whose Version is not
// greater than the one held is ignored.
type DesiredState struct {
	Kiosk   string   `json:"kiosk"`
	Version int64    `json:"version"`
	Station Station  `json:"station"`
	Notices []Notice `json:"notices"`
	// Playlists for the attract loop, in precedence order: the kiosk plays
	// the first one active now. Media lists every file they need.
	Playlists []Playlist `json:"playlists,omitempty"`
	Media     []MediaRef `json:"media,omitempty"`
}

// Where locates a problem: building (楼/号), unit (单元), room (室).
type Where struct {
	Building string `json:"building,omitempty"`
	Unit     string `json:"unit,omitempty"`
	Room     string `json:"room,omitempty"`
}

// Feedback is one resident's complaint, consultation, help request or
// suggestion. Its record id is the id of the envelope that carries it.
type Feedback struct {
	Ticket      string           `json:"ticket"`
	Kiosk       string           `json:"kiosk"`
	Kind        FeedbackKind     `json:"kind"`
	Category    FeedbackCategory `json:"category"`
	Where       Where            `json:"where"`
	Description string           `json:"description,omitempty"`
	Phone       string           `json:"phone,omitempty"`
	SubmittedAt time.Time        `json:"submitted_at"`
}

// Ack acknowledges an uplink record by its envelope id.
type Ack struct {
	Ref    string    `json:"ref"`
	Status AckStatus `json:"status"`
	Reason string    `json:"reason,omitempty"`
}

// Presence is a kiosk's birth (online) or last-will (offline) message. The
// hub ignores a presence whose Epoch is older than the newest it has seen, so
// a late will never marks a live kiosk offline.
type Presence struct {
	Kiosk string        `json:"kiosk"`
	State PresenceState `json:"state"`
	Epoch int64         `json:"epoch"`
}

// Heartbeat reports a kiosk's health.
type Heartbeat struct {
	Kiosk           string `json:"kiosk"`
	Epoch           int64  `json:"epoch"`
	SoftwareVersion string `json:"software_version"`
	UptimeSeconds   int64  `json:"uptime_seconds"`
	OutboxDepth     int    `json:"outbox_depth"`
	ContentVersion  int64  `json:"content_version"`
	FreeDiskBytes   int64  `json:"free_disk_bytes"`
	// Media is the state of every file of the held desired state; the
	// cache uses CacheBytes of its CacheQuota.
	Media      []MediaStatus `json:"media,omitempty"`
	CacheBytes int64         `json:"cache_bytes,omitempty"`
	CacheQuota int64         `json:"cache_quota,omitempty"`
}

func oneOf[T ~string](field string, v T, allowed []T) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%w: %s %q is not one of %v", ErrInvalid, field, v, allowed)
}

func text(field, s string, required bool, max int) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s has %d characters, limit %d", ErrInvalid, field, n, max)
	}
	return nil
}

func id(field, s string) error {
	if err := ValidID(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a target.
func (t Target) Validate() error {
	return firstErr(oneOf("target level", t.Level, Levels), id("target id", t.ID))
}

// Validate checks a notice.
func (n Notice) Validate() error {
	if err := firstErr(
		id("notice id", n.ID),
		text("title", n.Title, true, MaxTitle),
		text("body", n.Body, false, MaxNoticeBody),
		oneOf("category", n.Category, NoticeCategories),
		oneOf("priority", n.Priority, Priorities),
	); err != nil {
		return err
	}
	if n.ValidFrom.IsZero() {
		return fmt.Errorf("%w: valid_from is required", ErrInvalid)
	}
	if !n.ValidUntil.IsZero() && !n.ValidUntil.After(n.ValidFrom) {
		return fmt.Errorf("%w: valid_until %s is not after valid_from %s", ErrInvalid,
			n.ValidUntil.Format(time.RFC3339), n.ValidFrom.Format(time.RFC3339))
	}
	if len(n.Targets) == 0 || len(n.Targets) > MaxTargets {
		return fmt.Errorf("%w: notice needs 1-%d targets, has %d", ErrInvalid, MaxTargets, len(n.Targets))
	}
	for i, t := range n.Targets {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks a station.
func (s Station) Validate() error {
	return firstErr(
		text("station name", s.Name, true, MaxStationText),
		id("station community", s.Community),
		text("station community_name", s.CommunityName, false, MaxStationText),
		text("station address", s.Address, false, MaxStationText),
		text("station hours", s.Hours, false, MaxStationText),
		text("station contact", s.Contact, false, MaxStationText),
		text("station duty_officer", s.DutyOfficer, false, MaxStationText),
	)
}

// Validate checks a desired-state document.
func (d DesiredState) Validate() error {
	if err := id("kiosk", d.Kiosk); err != nil {
		return err
	}
	if d.Version <= 0 {
		return fmt.Errorf("%w: version must be positive, got %d", ErrInvalid, d.Version)
	}
	if err := d.Station.Validate(); err != nil {
		return err
	}
	if len(d.Notices) > MaxNotices {
		return fmt.Errorf("%w: %d notices, limit %d", ErrInvalid, len(d.Notices), MaxNotices)
	}
	seen := make(map[string]bool, len(d.Notices))
	for i, n := range d.Notices {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("notices[%d]: %w", i, err)
		}
		if seen[n.ID] {
			return fmt.Errorf("%w: notice id %q appears twice", ErrInvalid, n.ID)
		}
		seen[n.ID] = true
	}
	return d.validateMedia()
}

// validateMedia checks the playlists and media of a desired state: every
// file a playlist plays is listed once in Media, with the item's kind.
func (d DesiredState) validateMedia() error {
	if len(d.Media) > MaxMedia {
		return fmt.Errorf("%w: %d media, limit %d", ErrInvalid, len(d.Media), MaxMedia)
	}
	if len(d.Playlists) > MaxPlaylists {
		return fmt.Errorf("%w: %d playlists, limit %d", ErrInvalid, len(d.Playlists), MaxPlaylists)
	}
	kinds := make(map[string]MediaKind, len(d.Media))
	for i, m := range d.Media {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("media[%d]: %w", i, err)
		}
		if _, dup := kinds[m.SHA256]; dup {
			return fmt.Errorf("%w: media %s listed twice", ErrInvalid, m.SHA256)
		}
		kinds[m.SHA256] = m.Kind
	}
	ids := make(map[string]bool, len(d.Playlists))
	for i, p := range d.Playlists {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("playlists[%d]: %w", i, err)
		}
		if ids[p.ID] {
			return fmt.Errorf("%w: playlist id %q appears twice", ErrInvalid, p.ID)
		}
		ids[p.ID] = true
		for j, it := range p.Items {
			if it.Kind == ItemNotice {
				continue
			}
			k, ok := kinds[it.Media]
			if !ok {
				return fmt.Errorf("%w: playlists[%d].items[%d]: media %s is not in media", ErrInvalid, i, j, it.Media)
			}
			if string(k) != string(it.Kind) {
				return fmt.Errorf("%w: playlists[%d].items[%d]: a %s item plays media of kind %s", ErrInvalid, i, j, it.Kind, k)
			}
		}
	}
	return nil
}

// Validate checks a location.
func (w Where) Validate() error {
	return firstErr(
		text("where building", w.Building, false, MaxWhereField),
		text("where unit", w.Unit, false, MaxWhereField),
		text("where room", w.Room, false, MaxWhereField),
	)
}

// ValidPhone checks an optional phone number: empty, or 5–20 digits.
func ValidPhone(p string) error {
	if p == "" {
		return nil
	}
	if len(p) < 5 || len(p) > 20 {
		return fmt.Errorf("%w: phone must have 5-20 digits, has %d characters", ErrInvalid, len(p))
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return fmt.Errorf("%w: phone must contain digits only", ErrInvalid)
		}
	}
	return nil
}

// ValidTicket checks a ticket number: 1–40 characters of [A-Z0-9-].
func ValidTicket(t string) error {
	if t == "" || len(t) > MaxTicket {
		return fmt.Errorf("%w: ticket must be 1-%d characters", ErrInvalid, MaxTicket)
	}
	for _, r := range t {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("%w: ticket %q: character %q not in [A-Z0-9-]", ErrInvalid, t, r)
		}
	}
	return nil
}

// Validate checks a feedback record.
func (f Feedback) Validate() error {
	if err := firstErr(
		ValidTicket(f.Ticket),
		id("kiosk", f.Kiosk),
		oneOf("kind", f.Kind, FeedbackKinds),
		oneOf("category", f.Category, FeedbackCategories),
		f.Where.Validate(),
		text("description", f.Description, false, MaxDescription),
		ValidPhone(f.Phone),
	); err != nil {
		return err
	}
	if f.SubmittedAt.IsZero() {
		return fmt.Errorf("%w: submitted_at is required", ErrInvalid)
	}
	return nil
}

// Validate checks an ack.
func (a Ack) Validate() error {
	if a.Ref == "" || len(a.Ref) > 64 {
		return fmt.Errorf("%w: ack ref must be 1-64 characters", ErrInvalid)
	}
	return firstErr(
		oneOf("ack status", a.Status, []AckStatus{AckStored, AckDuplicate, AckRejected}),
		text("ack reason", a.Reason, false, MaxReason),
	)
}

// Validate checks a presence message.
func (p Presence) Validate() error {
	if err := firstErr(id("kiosk", p.Kiosk), oneOf("state", p.State, []PresenceState{Online, Offline})); err != nil {
		return err
	}
	if p.Epoch <= 0 {
		return fmt.Errorf("%w: epoch must be positive, got %d", ErrInvalid, p.Epoch)
	}
	return nil
}

// Validate checks a heartbeat.
func (h Heartbeat) Validate() error {
	if err := firstErr(id("kiosk", h.Kiosk), text("software_version", h.SoftwareVersion, true, MaxVersionText)); err != nil {
		return err
	}
	if h.Epoch <= 0 {
		return fmt.Errorf("%w: epoch must be positive, got %d", ErrInvalid, h.Epoch)
	}
	if h.UptimeSeconds < 0 || h.OutboxDepth < 0 || h.ContentVersion < 0 || h.FreeDiskBytes < 0 ||
		h.CacheBytes < 0 || h.CacheQuota < 0 {
		return fmt.Errorf("%w: heartbeat counters must not be negative", ErrInvalid)
	}
	if len(h.Media) > MaxMedia {
		return fmt.Errorf("%w: %d media statuses, limit %d", ErrInvalid, len(h.Media), MaxMedia)
	}
	for i, m := range h.Media {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("media[%d]: %w", i, err)
		}
	}
	return nil
}
