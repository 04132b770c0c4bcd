package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// MinPasswordLength is the least number of characters in a password.
const MinPasswordLength = 10

// MaxPasswordLength bounds a password, in bytes, so hashing stays bounded.
const MaxPasswordLength = 256

// Params are argon2id parameters. The zero value means DefaultParams.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams follow RFC 9106's second recommendation (64 MiB, 3 passes)
// with 4 lanes.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 4}

// Bounds on parameters read from a stored hash, so that a corrupt or hostile
// row cannot make a login allocate or spin without limit.
const (
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 64
	saltLen    = 16
	keyLen     = 32
	maxB64Part = 128
)

func (p Params) orDefault() Params {
	if p == (Params{}) {
		return DefaultParams
	}
	return p
}

func (p Params) validate() error {
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
		return fmt.Errorf("%w: argon2id parameters m=%d t=%d p=%d out of range", ErrBadHash, p.Memory, p.Time, p.Threads)
	}
	return nil
}

// CheckPassword reports whether pw is acceptable as a new password.
func CheckPassword(pw string) error {
	if !utf8.ValidString(pw) || utf8.RuneCountInString(pw) < MinPasswordLength || len(pw) > MaxPasswordLength {
		return fmt.Errorf("%w: a password has %d to %d bytes, at least %d characters, of UTF-8",
			ErrWeakPassword, MinPasswordLength, MaxPasswordLength, MinPasswordLength)
	}
	return nil
}

// HashPassword hashes pw with argon2id and a fresh random salt and returns
// the PHC string $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
// (salt and hash in unpadded standard base64).
func HashPassword(pw string, p Params) (string, error) {
	p = p.orDefault()
	if err := p.validate(); err != nil {
		return "", err
	}
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// ParseHash decodes a PHC argon2id string into its parameters, salt and key.
func ParseHash(phc string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrBadHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || parts[2] != fmt.Sprintf("v=%d", v) || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: version %q, want v=%d", ErrBadHash, parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads) {
		return p, nil, nil, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if err := p.validate(); err != nil {
		return p, nil, nil, err
	}
	if len(parts[4]) > maxB64Part || len(parts[5]) > maxB64Part {
		return p, nil, nil, fmt.Errorf("%w: salt or hash too long", ErrBadHash)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrBadHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrBadHash)
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the PHC string, comparing in
// constant time. A malformed PHC string is an error wrapping ErrBadHash.
func VerifyPassword(phc, pw string) (bool, error) {
	p, salt, key, err := ParseHash(phc)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordLength {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
