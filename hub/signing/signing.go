// Package signing keeps the hub's ed25519 signing key and the chain of every
// key it has used, so devices that trust an older key can follow a rotation:
// each new key is announced signed by the one before it
// (protocol.NewKeyLink). Only the newest private key is kept; rotating retires
// the old one for good.
//
// The state lives in one file, Dir/signing.json (0600), replaced atomically:
//
//	{"version":1,"key":"<base64 ed25519 seed of the newest key>","chain":{"links":[...]}}
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/shequ/shequ/hub/atomicfile"
	"github.com/shequ/shequ/protocol"
)

// FileName is the key file's name under the directory given to Open.
const FileName = "signing.json"

// MaxFileSize bounds the key file.
const MaxFileSize = 128 << 10

// fileVersion is the key file's format version.
const fileVersion = 1

// Errors returned (wrapped) by this package.
var (
	// ErrCorrupt means the key file does not hold a consistent key chain.
	ErrCorrupt = errors.New("signing: corrupt key file")
	// ErrChainFull means the chain has protocol.MaxKeyLinks links already.
	ErrChainFull = errors.New("signing: key chain is full")
)

// Keys is the hub's signing key chain. It is safe for concurrent use.
type Keys struct {
	path string

	mu    sync.RWMutex
	priv  ed25519.PrivateKey
	chain protocol.KeyChain
}

type file struct {
	Version int               `json:"version"`
	Key     string            `json:"key"`
	Chain   protocol.KeyChain `json:"chain"`
}

// Open loads the key chain under dir, creating the directory (0700) and a
// first key when there is none.
func Open(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signing: create %s: %w", dir, err)
	}
	k := &Keys{path: filepath.Join(dir, FileName)}
	data, err := os.ReadFile(k.path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("signing: generate key: %w", err)
		}
		k.priv = priv
		k.chain = protocol.KeyChain{Links: []protocol.KeyLink{protocol.NewKeyLink(1, pubOf(priv), nil)}}
		if err := k.save(); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signing: read %s: %w", k.path, err)
	}
	priv, chain, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("signing: %s: %w", k.path, err)
	}
	k.priv, k.chain = priv, chain
	return k, nil
}

// Parse decodes and checks a key file: the chain must verify from its first
// key to its newest, and the private key must be the newest.
func Parse(data []byte) (ed25519.PrivateKey, protocol.KeyChain, error) {
	if len(data) > MaxFileSize {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: %d bytes, limit %d", ErrCorrupt, len(data), MaxFileSize)
	}
	var f file
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if f.Version != fileVersion {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, f.Version, fileVersion)
	}
	seed, err := base64.StdEncoding.DecodeString(f.Key)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: key is not a base64 ed25519 seed", ErrCorrupt)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if err := f.Chain.Validate(); err != nil {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	first, err := protocol.DecodeKey(f.Chain.Links[0].Key)
	if err != nil {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Chain.Links[0].Serial != 1 {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: chain does not start at serial 1", ErrCorrupt)
	}
	newest, _, err := f.Chain.Advance(first)
	if err != nil {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if !newest.Equal(pubOf(priv)) {
		return nil, protocol.KeyChain{}, fmt.Errorf("%w: the private key is not the chain's newest key", ErrCorrupt)
	}
	return priv, f.Chain, nil
}

func pubOf(priv ed25519.PrivateKey) ed25519.PublicKey {
	return priv.Public().(ed25519.PublicKey)
}

// save writes the state; the caller holds mu or owns k exclusively.
func (k *Keys) save() error {
	b, err := json.Marshal(file{Version: fileVersion, Key: base64.StdEncoding.EncodeToString(k.priv.Seed()), Chain: k.chain})
	if err != nil {
		return fmt.Errorf("signing: encode: %w", err)
	}
	if err := atomicfile.Write(k.path, b, 0o600); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	return nil
}

// Signer returns the current private key.
func (k *Keys) Signer() ed25519.PrivateKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.priv
}

// Current returns the current public key, its id and its serial.
func (k *Keys) Current() (pub ed25519.PublicKey, kid string, serial int64) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	l := k.chain.Links[len(k.chain.Links)-1]
	return pubOf(k.priv), l.KID, l.Serial
}

// Chain returns a copy of the whole chain, oldest first.
func (k *Keys) Chain() protocol.KeyChain {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return protocol.KeyChain{Links: append([]protocol.KeyLink(nil), k.chain.Links...)}
}

// Rotate generates a new key, appends its link signed by the current key,
// saves the state and makes the new key current. On error nothing changes.
func (k *Keys) Rotate() (protocol.KeyLink, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.chain.Links) >= protocol.MaxKeyLinks {
		return protocol.KeyLink{}, fmt.Errorf("%w: %d links", ErrChainFull, len(k.chain.Links))
	}
	_, next, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return protocol.KeyLink{}, fmt.Errorf("signing: generate key: %w", err)
	}
	last := k.chain.Links[len(k.chain.Links)-1]
	link := protocol.NewKeyLink(last.Serial+1, pubOf(next), k.priv)
	oldPriv, oldChain := k.priv, k.chain
	k.priv = next
	k.chain = protocol.KeyChain{Links: append(append([]protocol.KeyLink(nil), oldChain.Links...), link)}
	if err := k.save(); err != nil {
		k.priv, k.chain = oldPriv, oldChain
		return protocol.KeyLink{}, err
	}
	return link, nil
}
