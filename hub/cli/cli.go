// Package cli is the hub's command line: "hub serve" runs the hub, and the
// staff and technician commands (claim, devices, revoke, rotate-key) call a
// running hub's HTTPS API with the admin token from its data directory,
// trusting only the hub CA found there. "hub mosquitto-conf" prepares an
// external mosquitto; "hub version" prints the version cmd/hub was built
// as. "hub db-backups" lists the database backups the hub took before
// upgrading its schema and "hub restore-db" puts one back, with the hub
// stopped.
//
// What the command line needs from its process besides the arguments
// comes in Options: the version, and the hook with which cmd/hub tells
// systemd that serve is ready and feeds its watchdog while the hub's
// health check passes.
package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/enrol"
	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/open311"
	"github.com/shequ/shequ/hub/pki"
)

// maxReply bounds a reply read from the hub.
const maxReply = 4 << 20

// Client calls a running hub's staff API.
type Client struct {
	URL   string // e.g. https://127.0.0.1:8080
	Token string
	HTTP  *http.Client
	CAPin string
}

// NewClient reads the admin token and the CA from the hub's data directory.
func NewClient(dataDir, url string) (*Client, error) {
	tok, err := hub.ReadAdminToken(dataDir)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(dataDir, hub.TLSDir, pki.CAFile))
	if err != nil {
		return nil, fmt.Errorf("hub CA: %w", err)
	}
	ca, err := hubCA(caPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Client{URL: strings.TrimSuffix(url, "/"), Token: tok, CAPin: pki.Pin(ca), HTTP: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}}, nil
}

func hubCA(p []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(p)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("hub CA: no certificate in ca.pem")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("hub CA: %w", err)
	}
	return c, nil
}

// do sends a request and decodes a JSON reply into out.
func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: reply: %w", method, path, err)
	}
	return nil
}

// Claim creates a claim code.
func (c *Client) Claim(ctx context.Context, community, kiosk string, ttl time.Duration) (enrol.ClaimCreated, error) {
	req := enrol.ClaimRequest{Community: community, Kiosk: kiosk}
	if ttl > 0 {
		req.TTL = ttl.String()
	}
	var out enrol.ClaimCreated
	return out, c.do(ctx, "POST", "/api/v1/claims", req, http.StatusCreated, &out)
}

// DeviceList is the reply of GET /api/v1/devices.
type DeviceList struct {
	Devices []enrol.Device `json:"devices"`
	Pending []enrol.Claim  `json:"pending"`
}

// Devices lists devices and pending claims.
func (c *Client) Devices(ctx context.Context) (DeviceList, error) {
	var out DeviceList
	return out, c.do(ctx, "GET", "/api/v1/devices", nil, http.StatusOK, &out)
}

// Revoke revokes a device.
func (c *Client) Revoke(ctx context.Context, id string) (enrol.Device, error) {
	var out enrol.Device
	return out, c.do(ctx, "POST", "/api/v1/devices/"+id+"/revoke", nil, http.StatusOK, &out)
}

// AddUser creates a staff account.
func (c *Client) AddUser(ctx context.Context, req accounts.AccountRequest) (accounts.Account, error) {
	var a accounts.Account
	err := c.do(ctx, http.MethodPost, "/api/v1/accounts", req, http.StatusCreated, &a)
	return a, err
}

// UserList is the reply of GET /api/v1/accounts.
type UserList struct {
	Accounts []accounts.Account `json:"accounts"`
}

// Users lists the staff accounts.
func (c *Client) Users(ctx context.Context) (UserList, error) {
	var l UserList
	err := c.do(ctx, http.MethodGet, "/api/v1/accounts", nil, http.StatusOK, &l)
	return l, err
}

// RotateKey rotates the hub's signing key.
func (c *Client) RotateKey(ctx context.Context) (hub.RotateResult, error) {
	var out hub.RotateResult
	return out, c.do(ctx, "POST", "/api/v1/keys/rotate", nil, http.StatusOK, &out)
}

// AddOpen311Key issues an Open311 API key to a partner system.
func (c *Client) AddOpen311Key(ctx context.Context, req open311.KeyRequest) (open311.KeyCreated, error) {
	var out open311.KeyCreated
	return out, c.do(ctx, http.MethodPost, "/api/v1/open311/keys", req, http.StatusCreated, &out)
}

// Open311Keys lists the Open311 API keys (never their secrets).
func (c *Client) Open311Keys(ctx context.Context) (open311.KeyList, error) {
	var out open311.KeyList
	return out, c.do(ctx, http.MethodGet, "/api/v1/open311/keys", nil, http.StatusOK, &out)
}

// RevokeOpen311Key revokes an Open311 API key.
func (c *Client) RevokeOpen311Key(ctx context.Context, id string) (open311.Key, error) {
	var out open311.Key
	return out, c.do(ctx, http.MethodPost, "/api/v1/open311/keys/"+url.PathEscape(id)+"/revoke", nil, http.StatusOK, &out)
}

const usage = `usage: hub [serve] [flags]            run the hub (default)
       hub version                         the hub's version
       hub claim -community ID [-kiosk ID] [-ttl 72h]
       hub devices
       hub revoke DEVICE-ID
       hub rotate-key
       hub mosquitto-conf -org FILE [-mqtt ADDR]
       hub ca-pin                          the CA pin to give agents (-ca-pin), e.g. for a kiosk image
       hub user add -username U -role R -node ID [-name NAME]   password read from stdin
       hub users
       hub open311-key add -name NAME -node ID[,ID] [-source hotline|partner]   the key is shown once
       hub open311-keys
       hub open311-key revoke KEY-ID
       hub db-backups                      the database backups taken before upgrades
       hub restore-db BACKUP               put a backup in place of the database (hub stopped)
Common flags: -data DIR (default ./data/hub), -hub URL (default https://127.0.0.1:8080)`

// Options are what cmd/hub gives the command line besides its arguments.
// The zero Options are a development build outside systemd.
type Options struct {
	// Version is the version the binary was built as: printed by "hub
	// version", logged by serve and reported by /healthz; default "dev".
	Version string
	// Serving, if set, is called by serve once the hub has started (store
	// open, broker and MQTT client connected, HTTPS listening) and runs
	// until ctx ends; check is the hub's liveness check (hub.Hub.Check).
	// cmd/hub passes sdnotify's readiness and watchdog. An error stops
	// the hub. nil: serve waits for ctx.
	Serving func(ctx context.Context, check func(context.Context) error) error
}

// Run runs the command in args (without the program name). serve runs
// until ctx ends.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, log *slog.Logger, opts Options) error {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("hub "+cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	dataDir := fs.String("data", "./data/hub", "hub data directory")
	hubURL := fs.String("hub", "https://"+hub.DefaultHTTPListen, "URL of the running hub's API")
	switch cmd {
	case "serve":
		return serve(ctx, fs, args, dataDir, log, opts)
	case "version":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, opts.Version)
		return err
	case "claim":
		community := fs.String("community", "", "community node id (required)")
		kiosk := fs.String("kiosk", "", "kiosk slot to fill or replace (optional)")
		ttl := fs.Duration("ttl", enrol.DefaultTTL, "how long the code stays valid")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if *community == "" {
			return errors.New("claim: -community is required")
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		cl, err := c.Claim(ctx, *community, *kiosk, *ttl)
		if err != nil {
			return err
		}
		slot := cl.Kiosk
		if slot == "" {
			slot = "(first free kiosk of the community)"
		}
		fmt.Fprintf(stdout, "认领码 / claim code:  %s\ncommunity:  %s\nkiosk:      %s\nexpires:    %s\nhub:        %s\nCA pin:     %s\n\n"+
			"On the kiosk: agent enrol -hub %s -code %s -ca-pin %s\n",
			cl.Code, cl.Community, slot, cl.ExpiresAt.Local().Format(time.DateTime), c.URL, c.CAPin, c.URL, cl.Code, c.CAPin)
		return nil
	case "devices":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		l, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tKIOSK\tCOMMUNITY\tSTATUS\tHARDWARE\tKEY\tENROLLED\tLAST SEEN")
		for _, d := range l.Devices {
			seen := "-"
			if !d.LastSeen.IsZero() {
				seen = d.LastSeen.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Kiosk, d.Community, d.Status, d.HardwareID, d.KeyID,
				d.EnrolledAt.Local().Format(time.DateTime), seen)
		}
		for _, p := range l.Pending {
			fmt.Fprintf(tw, "(claim %s)\t%s\t%s\tpending\t-\t-\texpires %s\t-\n", p.ID[:8], p.Kiosk, p.Community,
				p.ExpiresAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "revoke":
		if err := parse(fs, args, 1); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		d, err := c.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s (kiosk %s): %s\n", d.ID, d.Kiosk, d.Status)
		return nil
	case "rotate-key":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		r, err := c.RotateKey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signing key rotated: kid %s, serial %d\n", r.KID, r.Serial)
		return nil
	case "ca-pin":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		caPEM, err := os.ReadFile(filepath.Join(*dataDir, hub.TLSDir, pki.CAFile))
		if err != nil {
			return fmt.Errorf("hub CA (has the hub run once?): %w", err)
		}
		ca, err := hubCA(caPEM)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, pki.Pin(ca))
		return err
	case "user":
		username := fs.String("username", "", "login name, 3-32 of a-z 0-9 . _ - (required)")
		name := fs.String("name", "", "display name")
		role := fs.String("role", "", "bureau_admin, district_admin, squad_leader, officer, partner or technician (required)")
		node := fs.String("node", "", "org node the account acts within (required)")
		// "user add" with flags before or after "add".
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 || fs.Arg(0) != "add" {
			return fmt.Errorf("user: want \"user add\"\n%s", usage)
		}
		if err := parse(fs, fs.Args()[1:], 0); err != nil {
			return err
		}
		pw, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("user add: reading the password from stdin: %w", err)
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		a, err := c.AddUser(ctx, accounts.AccountRequest{Username: *username, DisplayName: *name,
			Role: accounts.Role(*role), Node: *node, Password: strings.TrimRight(pw, "\r\n")})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s: %s (%s) at %s\n", a.ID, a.Username, a.Role, a.Node)
		return nil
	case "users":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		l, err := c.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tROLE\tNODE\tLOCKED UNTIL")
		for _, a := range l.Accounts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Username, a.DisplayName, a.Role, a.Node, a.LockedUntil)
		}
		return tw.Flush()
	case "open311-key":
		name := fs.String("name", "", "the partner system's name, e.g. 12345 热线平台 (add)")
		nodes := fs.String("node", "", "comma-separated org nodes the key may file and read cases in (add)")
		source := fs.String("source", "partner", "case source of its requests: hotline or partner (add)")
		// "open311-key add|revoke" with flags before or after the verb.
		if err := fs.Parse(args); err != nil {
			return err
		}
		verb := fs.Arg(0)
		if verb != "add" && verb != "revoke" {
			return fmt.Errorf("open311-key: want \"open311-key add\" or \"open311-key revoke KEY-ID\"\n%s", usage)
		}
		nargs := 0
		if verb == "revoke" {
			nargs = 1
		}
		if err := parse(fs, fs.Args()[1:], nargs); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		if verb == "revoke" {
			k, err := c.RevokeOpen311Key(ctx, fs.Arg(0))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "open311 key %s (%s) revoked at %s\n", k.ID, k.Name, k.RevokedAt.Local().Format(time.DateTime))
			return nil
		}
		if *name == "" || *nodes == "" {
			return errors.New("open311-key add: -name and -node are required")
		}
		kc, err := c.AddOpen311Key(ctx, open311.KeyRequest{Name: *name, Nodes: strings.Split(*nodes, ","), Source: *source})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "open311 key %s for %s (source %s) in %s\n\nAPI key (shown once, give it to the partner over a safe channel):\n%s\n",
			kc.Key.ID, kc.Key.Name, kc.Key.Source, strings.Join(kc.Key.Nodes, ","), kc.APIKey)
		return nil
	case "open311-keys":
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		c, err := NewClient(*dataDir, *hubURL)
		if err != nil {
			return err
		}
		l, err := c.Open311Keys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSOURCE\tNODES\tCREATED\tREVOKED")
		for _, k := range l.Keys {
			revoked := "-"
			if !k.RevokedAt.IsZero() {
				revoked = k.RevokedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Source, strings.Join(k.Nodes, ","),
				k.CreatedAt.Local().Format(time.DateTime), revoked)
		}
		return tw.Flush()
	case "db-backups":
		return dbBackups(fs, args, dataDir, stdout)
	case "restore-db":
		return restoreDB(ctx, fs, args, dataDir, stdout)
	case "mosquitto-conf":
		mqtt := fs.String("mqtt", "127.0.0.1:8883", "address mosquitto listens on")
		org := fs.String("org", "", "org tree JSON file (required)")
		plain := fs.Bool("dev-plain", false, "plain TCP listener (development only)")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		conf, err := hub.PrepareExternalBroker(hub.Config{DataDir: *dataDir, OrgFile: *org, MQTTListen: *mqtt, PlainTCP: *plain})
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, conf)
		return err
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != nargs {
		return fmt.Errorf("%s: want %d argument(s), got %d\n%s", fs.Name(), nargs, fs.NArg(), usage)
	}
	return nil
}

func serve(ctx context.Context, fs *flag.FlagSet, args []string, dataDir *string, log *slog.Logger, opts Options) error {
	var cfg hub.Config
	var hostnames, pidfile, require2FA string
	var retentionDays int
	fs.StringVar(&cfg.OrgFile, "org", "", "org tree JSON file (required)")
	fs.StringVar(&cfg.MQTTListen, "mqtt", hub.DefaultMQTTListen, "embedded MQTT broker listen address")
	fs.StringVar(&cfg.BrokerURL, "broker", "", "external MQTT broker URL, e.g. ssl://127.0.0.1:8883 (disables the embedded broker)")
	fs.StringVar(&cfg.PublicBrokerURL, "public-broker", "", "broker URL handed to devices (default: the broker in use)")
	fs.StringVar(&cfg.HTTPListen, "http", hub.DefaultHTTPListen, "HTTPS API listen address")
	fs.StringVar(&cfg.ClientID, "client-id", hub.DefaultClientID, "the hub's MQTT client id")
	fs.StringVar(&hostnames, "hostnames", "", "extra comma-separated names (DNS or IP) for the server certificate")
	fs.BoolVar(&cfg.PlainTCP, "dev-plain", false, "plain MQTT and HTTP instead of TLS (development only)")
	fs.IntVar(&cfg.EnrolPerMinute, "enrol-per-minute", hub.DefaultEnrolPerMinute, "enrolment attempts per client IP per minute")
	fs.Int64Var(&cfg.MediaMaxUpload, "media-max-upload", media.DefaultMaxUpload, "largest media upload, bytes")
	fs.IntVar(&cfg.MediaBitrate, "media-bitrate", media.DefaultBitrate, "kiosk video bitrate, bits/s")
	fs.BoolVar(&cfg.MediaAudio, "media-audio", false, "keep the audio of videos (AAC)")
	fs.IntVar(&cfg.ChunkSize, "chunk-size", media.DefaultChunkSize, "media chunk size for MQTT transfers, bytes")
	fs.IntVar(&cfg.MediaSends, "media-sends", 0, "chunk messages published at once (default 4)")
	fs.StringVar(&cfg.UpdateCA, "update-ca", "", "update CA certificate (PEM) release bundles must be signed under; without it release uploads are refused")
	fs.StringVar(&pidfile, "mosquitto-pidfile", "", "external mosquitto's pid file: SIGHUP it after the passwd/acl files change")
	fs.StringVar(&require2FA, "require-2fa", "", "comma-separated staff roles that must use two-step verification, e.g. bureau_admin,district_admin")
	fs.Int64Var(&cfg.MinFreeDisk, "min-free-disk", hub.DefaultMinFreeDisk,
		"bytes free in the data directory's file system below which /healthz reports the disk failing; negative: not checked")
	fs.IntVar(&retentionDays, "phone-retention-days", int(hub.DefaultPhoneRetention/day),
		"days after its case closed that a resident's phone number is kept; 0 keeps them forever")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	retention, err := phoneRetention(retentionDays)
	if err != nil {
		return fmt.Errorf("serve: -phone-retention-days: %w", err)
	}
	cfg.PhoneRetention = retention
	roles, err := parseRoles(require2FA)
	if err != nil {
		return fmt.Errorf("serve: -require-2fa: %w", err)
	}
	cfg.Require2FA = roles
	if cfg.OrgFile == "" {
		return errors.New("serve: -org is required")
	}
	cfg.DataDir = *dataDir
	cfg.Version = opts.Version
	if hostnames != "" {
		cfg.Hostnames = strings.Split(hostnames, ",")
	}
	if pidfile != "" {
		cfg.BrokerReload = func() error { return hup(pidfile) }
	}
	h, err := hub.New(cfg, log)
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	if opts.Serving != nil {
		err = opts.Serving(ctx, h.Check)
	} else {
		<-ctx.Done()
	}
	log.Info("shutting down")
	return errors.Join(err, h.Close())
}

const day = 24 * time.Hour

// maxRetentionDays bounds -phone-retention-days (100 years), far below
// where days would overflow a time.Duration.
const maxRetentionDays = 36500

// phoneRetention turns -phone-retention-days into hub.Config's
// PhoneRetention: 0 keeps phones forever (negative there).
func phoneRetention(days int) (time.Duration, error) {
	switch {
	case days < 0 || days > maxRetentionDays:
		return 0, fmt.Errorf("%d days is not between 0 and %d", days, maxRetentionDays)
	case days == 0:
		return -1, nil
	}
	return time.Duration(days) * day, nil
}

// parseRoles parses a comma-separated list of account roles; empty is none.
func parseRoles(s string) ([]accounts.Role, error) {
	var out []accounts.Role
	for _, f := range strings.Split(s, ",") {
		r := accounts.Role(strings.TrimSpace(f))
		if r == "" {
			continue
		}
		if !r.Valid() {
			return nil, fmt.Errorf("role %q is not one of %v", r, accounts.Roles)
		}
		out = append(out, r)
	}
	return out, nil
}

// hup sends SIGHUP to the process whose id is in pidfile.
func hup(pidfile string) error {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return fmt.Errorf("mosquitto pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("mosquitto pid file %s: no pid", pidfile)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("SIGHUP mosquitto (pid %d): %w", pid, err)
	}
	return nil
}
