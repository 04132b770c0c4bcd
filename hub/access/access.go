// Package access decides who may use the MQTT broker and for what, once, for
// both brokers the hub can use: the embedded mochi broker asks a Table on
// every connect, publish, subscribe and delivery; for mosquitto the same
// rules are written out as a password file and an ACL file (WriteMosquitto).
//
// The rules:
//   - anonymous clients are refused; a username is a kiosk id (a device) or
//     HubUser (the hub's own client, which may do anything);
//   - a device's client id must equal its username, and its password must
//     match the hash stored at enrolment; revoked and replaced devices have
//     no account;
//   - a device publishes only to shequ/v3/up/{its kiosk}/{channel} for the
//     channels of UpChannels
//     (its last will included);
//   - a device subscribes to, and receives, only shequ/v3/down/{node}/{channel}
//     where node is its kiosk or one of its org-tree ancestors and channel is
//     a downlink channel or "+".
package access

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/shequ/shequ/protocol"
)

// HubUser is the username of the hub's own MQTT client.
const HubUser = "shequ-hub"

// Channels a device may publish to and receive from.
var (
	UpChannels = []string{protocol.ChannelFeedback, protocol.ChannelPresence, protocol.ChannelHeartbeat,
		protocol.ChannelMedia, protocol.ChannelPlays, protocol.ChannelRating, protocol.ChannelUpdate, protocol.ChannelUpdateStatus,
		protocol.ChannelResult}
	DownChannels = []string{protocol.ChannelDesired, protocol.ChannelAck, protocol.ChannelKeys,
		protocol.ChannelManifest, protocol.ChannelChunk, protocol.ChannelCases, protocol.ChannelRelease, protocol.ChannelCommand}
)

// Account is one broker login.
type Account struct {
	Username string   // kiosk id, or HubUser
	Groups   []string // the kiosk's org-tree ancestors (their down topics are readable)
	// SHA256 is the hex SHA-256 of the password. Passwords are 32 random
	// bytes, so a fast hash is enough for the embedded broker.
	SHA256 string
	// Mosquitto is the password in mosquitto's password-file form
	// ($7$ PBKDF2-SHA512, see HashMosquitto).
	Mosquitto string
}

// Hub reports whether the account is the hub's privileged client.
func (a Account) Hub() bool { return a.Username == HubUser }

// NewPassword returns a fresh password: 32 random bytes, base64url.
func NewPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("access: random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSHA256 returns the hex SHA-256 of a password.
func HashSHA256(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// mosquitto_passwd 2.0 writes "$7$<iterations>$<base64 12-byte salt>$<base64
// 64-byte PBKDF2-SHA512>"; verified against mosquitto_passwd -b on Debian's
// mosquitto 2.0.11.
const (
	mosqIterations = 101
	mosqSaltLen    = 12
	mosqHashLen    = sha512.Size
	// MaxMosquittoHash bounds a hash string before it is parsed.
	MaxMosquittoHash = 256
)

// HashMosquitto returns password in mosquitto's $7$ form with a fresh salt.
func HashMosquitto(password string) (string, error) {
	salt := make([]byte, mosqSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("access: random salt: %w", err)
	}
	return hashMosquitto(password, salt, mosqIterations)
}

func hashMosquitto(password string, salt []byte, iterations int) (string, error) {
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosqHashLen)
	if err != nil {
		return "", fmt.Errorf("access: pbkdf2: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", iterations, base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(key)), nil
}

// VerifyMosquitto reports whether password matches a $7$ hash.
func VerifyMosquitto(hash, password string) bool {
	if len(hash) > MaxMosquittoHash {
		return false
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > 1_000_000 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) == 0 || len(salt) > 64 {
		return false
	}
	want, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(want) != mosqHashLen {
		return false
	}
	got, err := pbkdf2.Key(sha512.New, password, salt, iter, mosqHashLen)
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// Table holds the accounts and answers the broker's questions. It is safe
// for concurrent use; Set replaces every account at once.
type Table struct {
	mu       sync.RWMutex
	accounts map[string]Account
}

// NewTable returns an empty table: it refuses everyone.
func NewTable() *Table { return &Table{accounts: map[string]Account{}} }

// Set replaces the accounts.
func (t *Table) Set(accounts []Account) {
	m := make(map[string]Account, len(accounts))
	for _, a := range accounts {
		m[a.Username] = a
	}
	t.mu.Lock()
	t.accounts = m
	t.mu.Unlock()
}

// Has reports whether username has an account.
func (t *Table) Has(username string) bool {
	_, ok := t.lookup(username)
	return ok
}

func (t *Table) lookup(username string) (Account, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	a, ok := t.accounts[username]
	return a, ok
}

// Errors of Authenticate, for the broker's log.
var (
	ErrAnonymous = errors.New("access: no username")
	ErrNoAccount = errors.New("access: no such account (unknown, revoked or replaced)")
	ErrPassword  = errors.New("access: wrong password")
	ErrClientID  = errors.New("access: client id differs from the username")
	ErrWillTopic = errors.New("access: last-will topic not allowed")
)

// Authenticate checks a connection: username, password, client id, and the
// last-will topic if the client set one (brokers publish a will without an
// ACL check).
func (t *Table) Authenticate(username, clientID string, password []byte, willTopic string) error {
	if username == "" {
		return ErrAnonymous
	}
	a, ok := t.lookup(username)
	if !ok {
		return ErrNoAccount
	}
	sum := sha256.Sum256(password)
	want, err := hex.DecodeString(a.SHA256)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return ErrPassword
	}
	if !a.Hub() && clientID != username {
		return ErrClientID
	}
	if willTopic != "" && !t.CanPublish(username, willTopic) {
		return ErrWillTopic
	}
	return nil
}

// CanPublish reports whether username may publish to topic.
func (t *Table) CanPublish(username, topic string) bool {
	a, ok := t.lookup(username)
	if !ok {
		return false
	}
	if a.Hub() {
		return true
	}
	for _, c := range UpChannels {
		if topic == protocol.UpTopic(a.Username, c).String() {
			return true
		}
	}
	return false
}

// CanRead reports whether username may subscribe to filter, or receive a
// message published to the topic filter.
func (t *Table) CanRead(username, filter string) bool {
	a, ok := t.lookup(username)
	if !ok {
		return false
	}
	if a.Hub() {
		return true
	}
	prefix := protocol.Root + "/" + string(protocol.Down) + "/"
	rest, ok := strings.CutPrefix(filter, prefix)
	if !ok {
		return false
	}
	node, channel, ok := strings.Cut(rest, "/")
	if !ok || (node != a.Username && !slices.Contains(a.Groups, node)) {
		return false
	}
	return channel == "+" || slices.Contains(DownChannels, channel)
}
