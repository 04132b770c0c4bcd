package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/atomicfile"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/pki"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Files under Config.DataDir.
const (
	DBFile             = "hub.db"          // the database (package store); pre-upgrade backups beside it
	AdminTokenFile     = "admin.token"     // the staff API's bearer token (0600)
	HubMQTTFile        = "hub-mqtt.secret" // the hub's own MQTT password (0600)
	ClaimSecretFile    = "claim.secret"    // HMAC key of claim codes (0600)
	ConsoleSecretFile  = "console.secret"  // HMAC key of the console's CSRF tokens (0600)
	ResidentSecretFile = "resident.secret" // HMAC key of the 城管码 form tokens and follow keys (0600)
	TLSDir             = "tls"             // CA and server certificate (package pki)
	KeysDir            = "keys"            // signing key chain (package signing)
	MosquittoDir       = "mosquitto"       // passwd and acl for an external mosquitto
	maxSecretSize      = 1 << 10
)

// secrets is what prepare creates or loads.
type secrets struct {
	pki         *pki.PKI
	adminToken  string
	hubMQTT     string
	claimSecret string
	console     string
	resident    string
}

// prepare creates the data directory, the PKI and the secrets, or loads
// them (idempotent).
func prepare(cfg Config, now time.Time) (*secrets, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	p, err := pki.Ensure(filepath.Join(cfg.DataDir, TLSDir), cfg.Hostnames, now)
	if err != nil {
		return nil, err
	}
	s := &secrets{pki: p}
	for _, f := range []struct {
		name string
		dst  *string
	}{{AdminTokenFile, &s.adminToken}, {HubMQTTFile, &s.hubMQTT}, {ClaimSecretFile, &s.claimSecret}, {ConsoleSecretFile, &s.console}, {ResidentSecretFile, &s.resident}} {
		if *f.dst, err = loadOrCreateSecret(filepath.Join(cfg.DataDir, f.name)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// loadOrCreateSecret reads a secret file, or creates it (0600) with 32
// random bytes in base64url.
func loadOrCreateSecret(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("secret %s: %w", path, err)
		}
		s := base64.RawURLEncoding.EncodeToString(b)
		if err := atomicfile.Write(path, []byte(s+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		return s, nil
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if len(b) > maxSecretSize || len(s) < 32 || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("secret %s: want one line of at least 32 characters", path)
	}
	return s, nil
}

// ReadAdminToken reads DataDir/admin.token, for tools on the hub's machine.
func ReadAdminToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return loadOrCreateSecret(path)
}

// accounts returns the broker accounts: the hub's and one per enrolled
// device of a kiosk in the org tree.
func (h *Hub) accounts(ctx context.Context) ([]access.Account, error) {
	hubHash, err := access.HashMosquitto(h.sec.hubMQTT)
	if err != nil {
		return nil, err
	}
	out := []access.Account{{Username: access.HubUser, SHA256: access.HashSHA256(h.sec.hubMQTT), Mosquitto: hubHash}}
	devs, err := h.store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if d.Status != store.DeviceEnrolled {
			continue
		}
		if _, ok := h.cfg.Org.Kiosk(d.Kiosk); !ok {
			h.log.Warn("enrolled device of a kiosk no longer in the org tree gets no broker access",
				"device", d.ID, "kiosk", d.Kiosk)
			continue
		}
		a := access.Account{Username: d.Kiosk, SHA256: d.MQTTSHA256, Mosquitto: d.MQTTMosquitto}
		for _, t := range h.cfg.Org.Ancestors(d.Kiosk) {
			if t.ID != d.Kiosk {
				a.Groups = append(a.Groups, t.ID)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// refreshAccess rebuilds the broker accounts from the database: the
// embedded broker's table, or the mosquitto files followed by
// Config.BrokerReload. Then it disconnects the devices whose access ended.
func (h *Hub) refreshAccess(ctx context.Context, ended []store.Device) (err error) {
	h.accessMu.Lock()
	defer h.accessMu.Unlock()
	defer func() { h.accessStale = err != nil }()
	accts, err := h.accounts(ctx)
	if err != nil {
		return fmt.Errorf("broker accounts: %w", err)
	}
	h.table.Set(accts)
	if h.cfg.BrokerURL != "" {
		if err := access.WriteMosquitto(filepath.Join(h.cfg.DataDir, MosquittoDir), accts); err != nil {
			return err
		}
		if h.cfg.BrokerReload != nil {
			if err := h.cfg.BrokerReload(); err != nil {
				return fmt.Errorf("reload broker: %w", err)
			}
		}
	}
	// Mosquitto disconnects them itself when it reloads the files. On the
	// embedded broker the connection under the kiosk's name is the ended
	// device's: a replacing device connects only after this returns.
	for _, d := range ended {
		if h.broker != nil && h.broker.Disconnect(d.Kiosk) {
			h.log.Info("disconnected device", "device", d.ID, "kiosk", d.Kiosk, "status", d.Status)
		}
	}
	return nil
}

// RotateKey makes a new signing key, announces it signed by the old one on
// the root's keys topic, and re-signs and republishes every kiosk's desired
// state.
func (h *Hub) RotateKey(ctx context.Context) (protocol.KeyLink, error) {
	link, err := h.keys.Rotate()
	if err != nil {
		return link, fmt.Errorf("hub: rotate key: %w", err)
	}
	h.log.Info("signing key rotated", "kid", link.KID, "serial", link.Serial)
	if err := h.fleet.PublishKeys(ctx, h.cfg.Org.Root().ID, h.keys.Chain()); err != nil {
		return link, fmt.Errorf("hub: rotate key: %w", err)
	}
	if err := h.reconcile(ctx, h.kioskIDs(), true, nil); err != nil {
		return link, fmt.Errorf("hub: rotate key: re-sign desired state: %w", err)
	}
	return link, nil
}

// RotateResult is the reply of POST /api/v1/keys/rotate.
type RotateResult struct {
	KID    string `json:"kid"`
	Serial int64  `json:"serial"`
}

func (h *Hub) rotateHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, oldKID, oldSerial := h.keys.Current()
	link, err := h.RotateKey(r.Context())
	if link.KID != "" && h.audit != nil { // the new key is in use even if publishing it failed
		h.audit(r.Context(), "keys.rotate", "keys", RotateResult{KID: oldKID, Serial: oldSerial},
			RotateResult{KID: link.KID, Serial: link.Serial})
	}
	code, body := http.StatusOK, any(RotateResult{KID: link.KID, Serial: link.Serial})
	if err != nil {
		h.log.Error("key rotation failed", "err", err)
		code, body = http.StatusInternalServerError, struct {
			Error string `json:"error"`
		}{err.Error()}
	}
	b, err := json.Marshal(body)
	if err != nil {
		h.log.Error("encoding reply", "err", err)
		return
	}
	w.WriteHeader(code)
	if _, err := w.Write(append(b, '\n')); err != nil {
		h.log.Debug("writing reply", "err", err)
	}
}

// PrepareExternalBroker creates (or reuses) the PKI, the hub's MQTT secret
// and the mosquitto password and ACL files under cfg.DataDir, from the
// devices enrolled in the hub database, and returns a mosquitto.conf body
// for a listener on cfg.MQTTListen: TLS with the hub's server certificate
// unless cfg.PlainTCP, no anonymous clients, client id forced to the
// username, the generated password and ACL files.
func PrepareExternalBroker(cfg Config) (string, error) {
	if cfg.DataDir == "" {
		return "", errors.New("hub: DataDir is required")
	}
	if cfg.MQTTListen == "" {
		cfg.MQTTListen = DefaultMQTTListen
	}
	host, port, err := net.SplitHostPort(cfg.MQTTListen)
	if err != nil {
		return "", fmt.Errorf("hub: MQTT listen address: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sec, err := prepare(cfg, cfg.Now())
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	st, err := store.Open(context.Background(), filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	if cfg.Org == nil {
		if cfg.Org, err = loadOrg(cfg.OrgFile); err != nil {
			return "", errors.Join(err, st.Close())
		}
	}
	h := &Hub{cfg: cfg, log: slog.New(slog.DiscardHandler), store: st, sec: sec, table: access.NewTable()}
	h.cfg.BrokerURL = "external" // write the mosquitto files
	h.cfg.BrokerReload = nil
	err = h.refreshAccess(context.Background(), nil)
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, MosquittoDir)
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# mosquitto.conf for the Shequ hub (hub mosquitto-conf). Mosquitto 2.0.\n")
	fmt.Fprintf(&b, "per_listener_settings false\nallow_anonymous false\n")
	fmt.Fprintf(&b, "password_file %s\nacl_file %s\n", abs(filepath.Join(dir, access.PasswdFile)), abs(filepath.Join(dir, access.ACLFile)))
	fmt.Fprintf(&b, "\nlistener %s %s\n", port, host)
	fmt.Fprintf(&b, "# Devices' client ids are their usernames; the ACL patterns rely on it.\nuse_username_as_clientid true\n")
	if !cfg.PlainTCP {
		fmt.Fprintf(&b, "certfile %s\nkeyfile %s\ncafile %s\ntls_version tlsv1.2\n",
			abs(sec.pki.Path(pki.ServerFile)), abs(sec.pki.Path(pki.ServerKeyFile)), abs(sec.pki.Path(pki.CAFile)))
	}
	return b.String(), nil
}

// ExternalBrokerURL returns the URL of a mosquitto configured by
// PrepareExternalBroker for cfg.
func ExternalBrokerURL(cfg Config) string {
	scheme := "ssl"
	if cfg.PlainTCP {
		scheme = "tcp"
	}
	return (&url.URL{Scheme: scheme, Host: cfg.MQTTListen}).String()
}

// loadOrg loads the org tree file.
func loadOrg(file string) (*orgtree.Tree, error) {
	if file == "" {
		return nil, errors.New("hub: OrgFile or Org is required")
	}
	t, err := orgtree.Load(file)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return t, nil
}
