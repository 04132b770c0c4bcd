package accounts

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/hub/totp"
)

// Two-step verification (两步验证): an account may add a second factor,
// time-based one-time codes (RFC 6238, hub/totp) from an authenticator app.
// It is switched on in two steps: OfferTwoFactor stores a fresh secret (not
// yet in force) for the enrolment page to show, and EnableTwoFactor puts it
// in force once the account proves it with a current code, returning ten
// single-use recovery codes to show once.
//
// With it on, a right password starts no session: BeginLogin returns a
// pending-login token instead, signed under the service's secret, bound to
// the account and its password hash, valid for PendingTTL, and
// CompleteLogin trades it and a code (or an unused recovery code) for a
// session. A code is accepted for the current 30-second step and one
// either side, and never for a step at or before the last one accepted.
// Wrong codes count toward the lockout as wrong passwords do.
//
// Secrets are sealed at rest with AES-256-GCM under a key derived from the
// service's secret (the account id is the additional data); recovery codes
// are kept as HMACs under another derived key. Neither is logged or
// audited. Changing the service's secret voids every enrolment, which
// admins then reset (ResetTwoFactorAs).

// Errors of two-step verification, returned (wrapped) by this package.
var (
	// ErrSecondFactor means the password was right but the account has
	// two-step verification on: the login goes on with CompleteLogin.
	ErrSecondFactor = errors.New("accounts: verification code required")
	// ErrBadCode means a verification or recovery code is wrong, malformed
	// or used already.
	ErrBadCode = errors.New("accounts: wrong verification code")
	// ErrPendingLogin means a pending-login token is forged, expired or no
	// longer matches its account: the login starts again with the password.
	ErrPendingLogin = errors.New("accounts: pending login invalid or expired")
	// ErrTwoFactorOn means two-step verification is on already.
	ErrTwoFactorOn = errors.New("accounts: two-step verification is on already")
	// ErrTwoFactorOff means two-step verification is not on (or, for
	// EnableTwoFactor, no secret was offered).
	ErrTwoFactorOff = errors.New("accounts: two-step verification is not on")
)

// Issuer names the hub in authenticator apps.
const Issuer = "Shequ"

// RecoveryCodes is how many recovery codes EnableTwoFactor returns.
const RecoveryCodes = 10

// maxPendingToken bounds a pending-login token.
const maxPendingToken = 512

// LoginResult is the outcome of a right password (BeginLogin).
type LoginResult struct {
	// Session is the new session's token, when the login is complete.
	Session string
	// Pending is the pending-login token, when a code must follow
	// (CompleteLogin); Session is empty then.
	Pending string
	// MustEnrol is set with Session when the account's role requires two-
	// step verification and it has none yet: until it enrols, the session
	// admits only the enrolment pages (EnrolSession).
	MustEnrol bool
	Account   Account
}

// Enrolment is a secret offered to an account, for the enrolment page.
type Enrolment struct {
	URI     string // otpauth:// URI, for the QR code
	Grouped string // the secret in base32, in groups of four, to type in
}

// TwoFactorStatus is an account's two-step verification.
type TwoFactorStatus struct {
	On           bool
	EnabledAt    time.Time
	RecoveryLeft int // unused recovery codes
	Required     bool
}

// derivedKey returns a key derived from the service's secret for purpose.
func (s *Service) derivedKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("shequ " + purpose + " v1"))
	return m.Sum(nil)
}

func (s *Service) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.derivedKey("totp seal"))
	if err != nil {
		return nil, fmt.Errorf("accounts: totp seal: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("accounts: totp seal: %w", err)
	}
	return g, nil
}

// seal encrypts an account's TOTP secret: nonce then ciphertext.
func (s *Service) seal(accountID string, secret []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("accounts: totp seal: %w", err)
	}
	return g.Seal(nonce, nonce, secret, []byte(accountID)), nil
}

func (s *Service) unseal(accountID string, sealed []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, fmt.Errorf("accounts: totp secret of %s: too short", accountID)
	}
	b, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(accountID))
	if err != nil {
		return nil, fmt.Errorf("accounts: totp secret of %s (was the console secret changed?): %w", accountID, err)
	}
	return b, nil
}

// normalRecovery returns a recovery code as stored (upper case, without
// spaces and hyphens), or false if s cannot be one.
func normalRecovery(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	c := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if len(c) != 10 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		return "", false
	}
	return c, true
}

func (s *Service) recoveryHash(accountID, normal string) string {
	m := hmac.New(sha256.New, s.derivedKey("totp recovery"))
	m.Write([]byte(accountID + "\x00" + normal))
	return hex.EncodeToString(m.Sum(nil))
}

// newRecoveryCodes returns RecoveryCodes codes of 50 random bits each, as
// shown ("ABCDE-FGH23"), and their hashes.
func (s *Service) newRecoveryCodes(accountID string) ([]string, []string) {
	codes, hashes := make([]string, RecoveryCodes), make([]string, RecoveryCodes)
	for i := range codes {
		t := rand.Text()[:10]
		codes[i] = t[:5] + "-" + t[5:]
		hashes[i] = s.recoveryHash(accountID, t)
	}
	return codes, hashes
}

// TwoFactorRequired reports whether the role must have two-step
// verification (Config.Require2FA).
func (s *Service) TwoFactorRequired(r Role) bool { return slices.Contains(s.cfg.Require2FA, r) }

// TwoFactor returns the account's two-step verification status.
func (s *Service) TwoFactor(ctx context.Context, a Account) (TwoFactorStatus, error) {
	st := TwoFactorStatus{Required: s.TwoFactorRequired(a.Role)}
	r, err := s.cfg.Store.TOTP(ctx, a.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !r.Enabled() {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("accounts: two-step status of %s: %w", a.ID, err)
	}
	st.On, st.EnabledAt = true, r.EnabledAt
	if st.RecoveryLeft, err = s.cfg.Store.RecoveryCodesLeft(ctx, a.ID); err != nil {
		return st, fmt.Errorf("accounts: two-step status of %s: %w", a.ID, err)
	}
	return st, nil
}

// mustEnrol reports whether the account's role requires two-step
// verification and it has none in force.
func (s *Service) mustEnrol(ctx context.Context, a Account) (bool, error) {
	if !s.TwoFactorRequired(a.Role) {
		return false, nil
	}
	st, err := s.TwoFactor(ctx, a)
	return !st.On, err
}

// OfferTwoFactor makes a fresh secret for the account and stores it, not
// yet in force, replacing any earlier offer. With two-step verification
// on already it is ErrTwoFactorOn.
func (s *Service) OfferTwoFactor(ctx context.Context, a Account) (Enrolment, error) {
	secret, err := totp.NewSecret()
	if err != nil {
		return Enrolment{}, fmt.Errorf("accounts: offer two-step: %w", err)
	}
	sealed, err := s.seal(a.ID, secret)
	if err != nil {
		return Enrolment{}, err
	}
	err = s.cfg.Store.OfferTOTP(ctx, store.TOTPRecord{AccountID: a.ID, Secret: sealed, CreatedAt: s.cfg.Now()})
	if errors.Is(err, store.ErrTOTPStep) {
		return Enrolment{}, ErrTwoFactorOn
	}
	if err != nil {
		return Enrolment{}, fmt.Errorf("accounts: offer two-step: %w", err)
	}
	return Enrolment{URI: totp.URI(Issuer, a.Username, secret), Grouped: totp.GroupSecret(secret)}, nil
}

// CurrentOffer returns the secret offered to the account and not yet in
// force (to show it again after a mistyped code); ErrTwoFactorOff without
// an offer, ErrTwoFactorOn when it is in force (its secret is never shown
// again).
func (s *Service) CurrentOffer(ctx context.Context, a Account) (Enrolment, error) {
	r, err := s.cfg.Store.TOTP(ctx, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Enrolment{}, ErrTwoFactorOff
	case err != nil:
		return Enrolment{}, fmt.Errorf("accounts: two-step offer: %w", err)
	case r.Enabled():
		return Enrolment{}, ErrTwoFactorOn
	}
	secret, err := s.unseal(a.ID, r.Secret)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{URI: totp.URI(Issuer, a.Username, secret), Grouped: totp.GroupSecret(secret)}, nil
}

func twoFactorState(on bool) map[string]string {
	if on {
		return map[string]string{"two_factor": "on"}
	}
	return map[string]string{"two_factor": "off"}
}

// EnableTwoFactor puts the offered secret in force when code is its
// current code (ErrBadCode otherwise), and returns the account's recovery
// codes, to be shown once. Without an offer it is ErrTwoFactorOff, with
// two-step verification on already ErrTwoFactorOn.
func (s *Service) EnableTwoFactor(ctx context.Context, a Account, code, ip string) ([]string, error) {
	r, err := s.cfg.Store.TOTP(ctx, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrTwoFactorOff
	case err != nil:
		return nil, fmt.Errorf("accounts: enable two-step: %w", err)
	case r.Enabled():
		return nil, ErrTwoFactorOn
	}
	c, err := totp.ParseCode(code)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCode, err)
	}
	secret, err := s.unseal(a.ID, r.Secret)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	step, ok := totp.Verify(secret, c, now, 0)
	if !ok {
		return nil, ErrBadCode
	}
	codes, hashes := s.newRecoveryCodes(a.ID)
	after := twoFactorState(true)
	after["ip"] = ip
	audit, err := s.record(AuditEntry{At: now, Actor: object(a.ID), Action: "totp.enable", Object: object(a.ID),
		Before: twoFactorState(false), After: after})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.EnableTOTP(ctx, a.ID, now, step, hashes, audit); errors.Is(err, store.ErrNotFound) {
		return nil, ErrTwoFactorOff // enabled or reset meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("accounts: enable two-step: %w", err)
	}
	return codes, nil
}

// checkCode checks a code of the account with TOTP in force (r): a current
// TOTP code not used before, or an unused recovery code, which is used up.
// It returns how the code was right ("totp", "recovery code") or, when it
// is not, ErrBadCode and the reason to audit.
func (s *Service) checkCode(ctx context.Context, r store.TOTPRecord, code string, now time.Time) (how, reason string, err error) {
	if c, perr := totp.ParseCode(code); perr == nil {
		secret, err := s.unseal(r.AccountID, r.Secret)
		if err != nil {
			return "", "", err
		}
		step, ok := totp.Verify(secret, c, now, r.LastStep)
		if !ok {
			if _, any := totp.Verify(secret, c, now, -1); any {
				return "", "replayed code", ErrBadCode
			}
			return "", "wrong code", ErrBadCode
		}
		err = s.cfg.Store.UseTOTPStep(ctx, r.AccountID, step)
		if errors.Is(err, store.ErrTOTPStep) {
			return "", "replayed code", ErrBadCode
		}
		if err != nil {
			return "", "", fmt.Errorf("accounts: %w", err)
		}
		return "totp", "", nil
	}
	n, ok := normalRecovery(code)
	if !ok {
		return "", "malformed code", ErrBadCode
	}
	err = s.cfg.Store.UseRecoveryCode(ctx, r.AccountID, s.recoveryHash(r.AccountID, n), now)
	if errors.Is(err, store.ErrNotFound) {
		return "", "wrong recovery code", ErrBadCode
	}
	if err != nil {
		return "", "", fmt.Errorf("accounts: %w", err)
	}
	return "recovery code", "", nil
}

// addFailure records a failed login (a wrong password or code) of the
// account and locks it when that makes MaxFailures within FailureWindow.
func (s *Service) addFailure(ctx context.Context, id, ip string, now time.Time) error {
	n, err := s.cfg.Store.AddLoginFailure(ctx, id, now, now.Add(-s.cfg.FailureWindow))
	if err != nil {
		return fmt.Errorf("accounts: login failure %s: %w", id, err)
	}
	if n >= s.cfg.MaxFailures {
		if _, err := s.Lock(ctx, "system", id, now.Add(s.cfg.LockDuration)); err != nil {
			return err
		}
		s.log.Warn("account locked after failed logins", "account", id, "failures", n, "ip", ip)
	}
	return nil
}

// DisableTwoFactor switches the account's two-step verification off, which
// it proves with a current code or recovery code, or else its password. A
// wrong proof counts as a failed login and is ErrBadCode (a code) or
// ErrBadCredentials (the password).
func (s *Service) DisableTwoFactor(ctx context.Context, a Account, code, password, ip string) error {
	r, err := s.cfg.Store.TOTP(ctx, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !r.Enabled():
		return ErrTwoFactorOff
	case err != nil:
		return fmt.Errorf("accounts: disable two-step: %w", err)
	}
	now := s.cfg.Now()
	var reason string
	var bad error
	switch {
	case code != "":
		_, reason, err = s.checkCode(ctx, r, code, now)
		if errors.Is(err, ErrBadCode) {
			bad, err = ErrBadCode, nil
		}
	case password != "":
		acct, err2 := s.cfg.Store.Account(ctx, a.ID)
		if err2 != nil {
			return fmt.Errorf("accounts: disable two-step: %w", err2)
		}
		var ok bool
		ok, err = VerifyPassword(acct.Password, password)
		if !ok {
			bad, reason = ErrBadCredentials, "wrong password"
		}
	default:
		bad, reason = ErrBadCode, "no code or password"
	}
	if err != nil {
		return err
	}
	if bad != nil {
		if err := s.addFailure(ctx, a.ID, ip, now); err != nil {
			return errors.Join(bad, err)
		}
		err := s.Audit(ctx, AuditEntry{At: now, Actor: object(a.ID), Action: "totp.disable_failure", Object: object(a.ID),
			After: map[string]string{"ip": ip, "reason": reason}})
		return errors.Join(bad, err)
	}
	after := twoFactorState(false)
	after["ip"] = ip
	audit, err := s.record(AuditEntry{At: now, Actor: object(a.ID), Action: "totp.disable", Object: object(a.ID),
		Before: twoFactorState(true), After: after})
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteTOTP(ctx, a.ID, false, audit); err != nil {
		return fmt.Errorf("accounts: disable two-step: %w", err)
	}
	return nil
}

// ResetTwoFactorAs switches off the two-step verification of the account
// with the id as actor, who must manage it (a lost phone): its secret,
// offered or in force, and its recovery codes go, and its sessions end.
// It is audited with the state before and after.
func (s *Service) ResetTwoFactorAs(ctx context.Context, actor Account, id string) (Account, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return Account{}, err
	}
	if actor.ID == a.ID {
		return Account{}, fmt.Errorf("%w: an account cannot reset its own two-step verification", ErrForbidden)
	}
	if !s.mayManage(actor, a) {
		return Account{}, fmt.Errorf("accounts: reset two-step %q: %w", id, store.ErrNotFound)
	}
	st, err := s.TwoFactor(ctx, a)
	if err != nil {
		return Account{}, err
	}
	audit, err := s.record(AuditEntry{Actor: object(actor.ID), Action: "account.reset_2fa", Object: object(id),
		Before: twoFactorState(st.On), After: twoFactorState(false)})
	if err != nil {
		return Account{}, err
	}
	if err := s.cfg.Store.DeleteTOTP(ctx, id, true, audit); err != nil {
		return Account{}, fmt.Errorf("accounts: reset two-step %s: %w", id, err)
	}
	return a, nil
}

// pendingMAC is the signature of a pending-login payload for the account
// whose password hash is pwHash: a new password voids pending logins.
func (s *Service) pendingMAC(payload, pwHash string) []byte {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("shequ 2fa pending v1\x00" + payload + "\x00" + pwHash))
	return m.Sum(nil)
}

// pendingToken returns a pending-login token of the account: its id, when
// it expires and a nonce, signed.
func (s *Service) pendingToken(r store.AccountRecord, now time.Time) string {
	payload := r.ID + "|" + strconv.FormatInt(now.Add(s.cfg.PendingTTL).Unix(), 10) + "|" + rand.Text()
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(s.pendingMAC(payload, r.Password))
}

// pendingAccount checks a pending-login token and returns its account.
func (s *Service) pendingAccount(ctx context.Context, token string, now time.Time) (store.AccountRecord, error) {
	if len(token) > maxPendingToken {
		return store.AccountRecord{}, ErrPendingLogin
	}
	p64, m64, ok := strings.Cut(token, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	parts := strings.Split(string(payload), "|")
	if !ok || err1 != nil || err2 != nil || len(parts) != 3 {
		return store.AccountRecord{}, ErrPendingLogin
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() >= exp {
		return store.AccountRecord{}, ErrPendingLogin
	}
	r, err := s.cfg.Store.Account(ctx, parts[0])
	if errors.Is(err, store.ErrNotFound) {
		return store.AccountRecord{}, ErrPendingLogin
	}
	if err != nil {
		return store.AccountRecord{}, fmt.Errorf("accounts: pending login: %w", err)
	}
	if !hmac.Equal(mac, s.pendingMAC(string(payload), r.Password)) {
		return store.AccountRecord{}, ErrPendingLogin
	}
	return r, nil
}

// CompleteLogin finishes a login begun by BeginLogin: with the pending
// token and a right code (a current TOTP code not used before, or an
// unused recovery code) it starts a session and returns its token. A
// wrong code counts as a failed login and is ErrBadCode, audited as
// "login.2fa.failure"; a forged or expired token is ErrPendingLogin; a
// locked account ErrBadCredentials with ErrLocked.
func (s *Service) CompleteLogin(ctx context.Context, pending, code, ip string) (string, Account, error) {
	if s.cfg.Limiter != nil {
		if ok, _ := s.cfg.Limiter.Allow(ip); !ok {
			return "", Account{}, ErrRateLimited
		}
	}
	now := s.cfg.Now()
	r, err := s.pendingAccount(ctx, pending, now)
	if err != nil {
		return "", Account{}, err
	}
	fail := func(reason string, cause error) (string, Account, error) {
		err := s.Audit(ctx, AuditEntry{At: now, Actor: "ip:" + ip, Action: "login.2fa.failure", Object: object(r.ID),
			After: map[string]string{"username": r.Username, "reason": reason}})
		return "", Account{}, errors.Join(cause, err)
	}
	if r.LockedUntil.After(now) {
		return fail("locked", errors.Join(ErrBadCredentials, ErrLocked))
	}
	t, err := s.cfg.Store.TOTP(ctx, r.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !t.Enabled() {
		return "", Account{}, ErrPendingLogin // reset since the password
	}
	if err != nil {
		return "", Account{}, fmt.Errorf("accounts: login %s: %w", r.ID, err)
	}
	how, reason, err := s.checkCode(ctx, t, code, now)
	if errors.Is(err, ErrBadCode) {
		if err := s.addFailure(ctx, r.ID, ip, now); err != nil {
			return "", Account{}, errors.Join(ErrBadCode, err)
		}
		return fail(reason, ErrBadCode)
	}
	if err != nil {
		return "", Account{}, err
	}
	token, a, err := s.startSession(ctx, r, now, map[string]string{"ip": ip, "second_factor": how})
	if err != nil {
		return "", Account{}, err
	}
	return token, a, nil
}

// startSession starts a session of the account, audited as a login with
// the fields of after.
func (s *Service) startSession(ctx context.Context, r store.AccountRecord, now time.Time, after map[string]string) (string, Account, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Account{}, fmt.Errorf("accounts: session id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	audit, err := s.record(AuditEntry{At: now, Actor: object(r.ID), Action: "login.success", Object: object(r.ID), After: after})
	if err != nil {
		return "", Account{}, err
	}
	if err := s.cfg.Store.CreateSession(ctx, store.SessionRecord{IDHash: hashToken(token), AccountID: r.ID,
		CreatedAt: now, LastSeen: now}, audit); err != nil {
		return "", Account{}, fmt.Errorf("accounts: login %s: %w", r.ID, err)
	}
	return token, view(r), nil
}
