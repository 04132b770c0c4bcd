package protocol

import (
	"fmt"
	"strings"
)

// The topic tree. Every topic starts with Root; uplink topics (device → hub)
// live under Root/up/{kiosk}/, downlink topics (hub → device) under
// Root/down/{node}/, where node is a kiosk id or the id of an org-tree node
// above it (ids are unique across the whole tree), so one message can reach a
// group. The split by direction makes broker ACLs a prefix rule: a device
// publishes only under its own up/ and subscribes only to the down/ topics of
// itself and its ancestors.
//
//	shequ/v3/up/{kiosk}/feedback    agent → hub   QoS 1, not retained   Feedback
//	shequ/v3/up/{kiosk}/presence    agent → hub   QoS 1, not retained   Presence (birth and last will)
//	shequ/v3/up/{kiosk}/heartbeat   agent → hub   QoS 0, not retained   Heartbeat
//	shequ/v3/down/{kiosk}/desired   hub → agent   QoS 1, retained       DesiredState (signed)
//	shequ/v3/down/{kiosk}/ack       hub → agent   QoS 1, not retained   Ack (signed)
//	shequ/v3/down/{root}/keys       hub → agents  QoS 1, retained       KeyChain (signed), on the org tree's root node
//	shequ/v3/up/{kiosk}/media       agent → hub   QoS 1, not retained   MediaRequest
//	shequ/v3/up/{kiosk}/plays       agent → hub   QoS 1, not retained   PlayStats (outbox record)
//	shequ/v3/down/{kiosk}/manifest  hub → agent   QoS 1, not retained   Manifest (signed)
//	shequ/v3/down/{kiosk}/chunk     hub → agent   QoS 1, not retained   Chunk
//	shequ/v3/down/{kiosk}/cases     hub → agent   QoS 1, retained       CaseBoard (signed)
//	shequ/v3/up/{kiosk}/rating      agent → hub   QoS 1, not retained   CaseRating (outbox record)
//	shequ/v3/down/{kiosk}/release   hub → agent   QoS 1, retained       UpdateOffer (signed)
//	shequ/v3/up/{kiosk}/update      agent → hub   QoS 1, not retained   UpdateReport (outbox record)
//	shequ/v3/up/{kiosk}/update_status agent → hub QoS 0, not retained   UpdateStatus
//	shequ/v3/down/{kiosk}/command   hub → agent   QoS 1, not retained   Command (signed)
//	shequ/v3/up/{kiosk}/result      agent → hub   QoS 1, not retained   CommandResult (outbox record)
const (
	Root = "shequ/v3"

	ChannelFeedback     = "feedback"
	ChannelPresence     = "presence"
	ChannelHeartbeat    = "heartbeat"
	ChannelDesired      = "desired"
	ChannelAck          = "ack"
	ChannelKeys         = "keys"
	ChannelMedia        = "media"
	ChannelPlays        = "plays"
	ChannelManifest     = "manifest"
	ChannelChunk        = "chunk"
	ChannelCases        = "cases"
	ChannelRating       = "rating"
	ChannelUpdate       = "update"
	ChannelUpdateStatus = "update_status"
	ChannelRelease      = "release"
	ChannelCommand      = "command"
	ChannelResult       = "result"
)

// Direction of a topic.
type Direction string

// Directions.
const (
	Up   Direction = "up"
	Down Direction = "down"
)

// QoS and retain flags per channel, used by both ends so they cannot disagree.
var channelSpec = map[string]struct {
	Dir    Direction
	QoS    byte
	Retain bool
}{
	ChannelFeedback:     {Up, 1, false},
	ChannelPresence:     {Up, 1, false},
	ChannelHeartbeat:    {Up, 0, false},
	ChannelDesired:      {Down, 1, true},
	ChannelAck:          {Down, 1, false},
	ChannelKeys:         {Down, 1, true},
	ChannelMedia:        {Up, 1, false},
	ChannelPlays:        {Up, 1, false},
	ChannelManifest:     {Down, 1, false},
	ChannelChunk:        {Down, 1, false},
	ChannelCases:        {Down, 1, true},
	ChannelRating:       {Up, 1, false},
	ChannelUpdate:       {Up, 1, false},
	ChannelUpdateStatus: {Up, 0, false},
	ChannelRelease:      {Down, 1, true},
	ChannelCommand:      {Down, 1, false},
	ChannelResult:       {Up, 1, false},
}

// Topic is a parsed Shequ topic.
type Topic struct {
	Dir Direction
	// Kiosk is the kiosk id; on a downlink topic it may also be the id of an
	// org-tree node above the kiosk (a group topic).
	Kiosk   string
	Channel string
}

// String returns the topic's wire form.
func (t Topic) String() string {
	return Root + "/" + string(t.Dir) + "/" + t.Kiosk + "/" + t.Channel
}

// QoS is the QoS level messages on this topic are published with.
func (t Topic) QoS() byte { return channelSpec[t.Channel].QoS }

// Retained reports whether messages on this topic are published retained.
func (t Topic) Retained() bool { return channelSpec[t.Channel].Retain }

// UpTopic returns the uplink topic of a kiosk for a channel.
func UpTopic(kiosk, channel string) Topic { return Topic{Up, kiosk, channel} }

// DownTopic returns the downlink topic of a kiosk, or of an org-tree node
// (a group), for a channel.
func DownTopic(node, channel string) Topic { return Topic{Down, node, channel} }

// DownFilter is the subscription filter for every downlink channel of a
// kiosk or an org-tree node.
func DownFilter(node string) string { return Root + "/down/" + node + "/+" }

// UpFilter is the subscription filter for one uplink channel of all kiosks.
func UpFilter(channel string) string { return Root + "/up/+/" + channel }

// SharedUpFilter is UpFilter as an MQTT shared subscription, so several hub
// replicas split the uplink between them.
func SharedUpFilter(group, channel string) string {
	return "$share/" + group + "/" + UpFilter(channel)
}

// ParseTopic parses and validates a topic of the tree.
func ParseTopic(s string) (Topic, error) {
	rest, ok := strings.CutPrefix(s, Root+"/")
	if !ok {
		return Topic{}, fmt.Errorf("%w: %q lacks prefix %s/", ErrTopic, s, Root)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return Topic{}, fmt.Errorf("%w: %q has %d levels after %s, want 3", ErrTopic, s, len(parts), Root)
	}
	t := Topic{Dir: Direction(parts[0]), Kiosk: parts[1], Channel: parts[2]}
	spec, ok := channelSpec[t.Channel]
	if !ok || spec.Dir != t.Dir {
		return Topic{}, fmt.Errorf("%w: %q: no channel %q in direction %q", ErrTopic, s, t.Channel, t.Dir)
	}
	if err := ValidID(t.Kiosk); err != nil {
		return Topic{}, fmt.Errorf("%w: %q: kiosk: %v", ErrTopic, s, err)
	}
	return t, nil
}

// ValidID checks an identifier used for kiosks and org-tree nodes: 1–64
// characters of [a-z0-9-_.]. Such ids are safe inside MQTT topics, file names
// and URLs.
func ValidID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: id %q must be 1-64 characters", ErrInvalid, id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%w: id %q: character %q not in [a-z0-9-_.]", ErrInvalid, id, r)
		}
	}
	return nil
}
