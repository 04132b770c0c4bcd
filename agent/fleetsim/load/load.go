// Package load runs load scenarios against a running hub with a simulated
// fleet (package fleetsim): notice fan-out (how long until every agent has
// a new notice in its database) and feedback ingestion (records per second
// from submission until the hub has stored and acknowledged them all, with
// a check for lost and duplicated records through the hub's API).
//
// It talks to the hub only over MQTT (the agents) and its HTTPS API, so it
// measures a hub on another machine as well as one in the same process.
// Every API call carries the hub's admin token and trusts only the pinned
// hub CA; the agents enrol with claim codes created through the API
// (fleetsim.Config.Claim), so the hub must allow a fleet's worth of
// enrolments per minute (`hub serve -enrol-per-minute`).
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shequ/shequ/agent/fleetsim"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/protocol"
)

// Modes of a run.
const (
	ModeFanout = "fanout"
	ModeIngest = "ingest"
)

// Defaults for zero Config fields.
const (
	DefaultHubURL      = "https://127.0.0.1:8080"
	DefaultRecords     = 10000
	DefaultNotices     = 5
	DefaultConcurrency = 32
	DefaultTimeout     = 10 * time.Minute
	// MaxKioskList bounds the ids a kiosk list (-kiosks) expands to.
	MaxKioskList = 100000
)

// ErrLoss means records were lost, duplicated, or appeared unasked at the
// hub.
var ErrLoss = errors.New("load: records lost or duplicated")

// Config configures a run. Zero values mean the defaults.
type Config struct {
	HubURL string // hub HTTPS API; default DefaultHubURL
	// HubData is the data directory of a hub on this machine: the admin
	// token and the CA pin are read from it when Token or CAPin is empty.
	HubData string
	Token   string // the hub's admin token (DataDir/admin.token)
	CAPin   string // hex SHA-256 of the hub CA certificate (printed by `hub claim`)
	// BrokerURL overrides the broker URL the agents receive at enrolment.
	BrokerURL string
	// EnrolConcurrency bounds the agents enrolling at once; default
	// fleetsim.DefaultEnrolConcurrency.
	EnrolConcurrency int
	Kiosks           []string // kiosk ids to simulate; when empty, read from OrgFile or else from the hub
	OrgFile          string   // org file to read kiosk ids from when Kiosks is empty
	N                int      // simulate the first N kiosks; 0: all
	Mode             string   // ModeFanout or ModeIngest; required
	Records          int      // ingest: records in all; default DefaultRecords (rounded up to a multiple of the agents)
	Notices          int      // fanout: notices sent one after another; default DefaultNotices
	// Concurrency bounds ingest submissions at once; default DefaultConcurrency.
	Concurrency int
	// Root is where the agents keep their databases; default a new
	// temporary directory, removed after the run.
	Root              string
	MaxInFlight       int           // agents' in-flight bound; default the agent's
	HeartbeatInterval time.Duration // default the agent's
	ResendAfter       time.Duration // default the agent's
	Timeout           time.Duration // bound of each wait; default DefaultTimeout
}

func (c *Config) setDefaults() error {
	if c.HubURL == "" {
		c.HubURL = DefaultHubURL
	}
	if c.Mode != ModeFanout && c.Mode != ModeIngest {
		return fmt.Errorf("load: mode %q: want %s or %s", c.Mode, ModeFanout, ModeIngest)
	}
	if c.N < 0 || c.Records < 0 || c.Notices < 0 || c.Concurrency < 0 || c.EnrolConcurrency < 0 {
		return errors.New("load: -n, -records, -notices, -concurrency and -enrol-concurrency must not be negative")
	}
	if c.Records == 0 {
		c.Records = DefaultRecords
	}
	if c.Notices == 0 {
		c.Notices = DefaultNotices
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HubData != "" && (c.Token == "" || c.CAPin == "") {
		tok, pin, err := HubCredentials(c.HubData)
		if err != nil {
			return err
		}
		if c.Token == "" {
			c.Token = tok
		}
		if c.CAPin == "" && strings.HasPrefix(c.HubURL, "https:") {
			c.CAPin = pin
		}
	}
	return nil
}

// Run starts a fleet, runs the scenario of cfg.Mode against the hub,
// writes the figures to out, and stops the fleet. It fails with ErrLoss if
// an ingest run finds any record lost or duplicated.
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer) (err error) {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	c, err := NewClient(ClientConfig{HubURL: cfg.HubURL, Token: cfg.Token, CAPin: cfg.CAPin})
	if err != nil {
		return err
	}
	defer c.Close()
	ids, err := kioskIDs(ctx, cfg, c)
	if err != nil {
		return err
	}
	claim, err := c.Claimer(ctx)
	if err != nil {
		return err
	}
	if cfg.Root == "" {
		dir, err := os.MkdirTemp("", "shequ-load-")
		if err != nil {
			return fmt.Errorf("load: agents' data dir: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("load: remove %s: %w", dir, rerr))
			}
		}()
		cfg.Root = dir
	}

	started := time.Now()
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	fl, err := fleetsim.Start(wctx, fleetsim.Config{
		Root: cfg.Root, KioskIDs: ids, HubURL: cfg.HubURL, CAPin: cfg.CAPin, Claim: claim,
		EnrolConcurrency: cfg.EnrolConcurrency, BrokerURL: cfg.BrokerURL, MaxInFlight: cfg.MaxInFlight,
		HeartbeatInterval: cfg.HeartbeatInterval, ResendAfter: cfg.ResendAfter,
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, fl.Close()) }()
	fmt.Fprintf(out, "fleet: %d agents started in %v (%d enrolled now, %d were enrolled already)\n",
		fl.Len(), round(time.Since(started)), fl.Enrolled(), fl.Len()-fl.Enrolled())
	if err := fl.WaitConnected(wctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "fleet: all connected after %v\n", round(time.Since(started)))
	if err := fl.WaitSynced(wctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "fleet: all hold a desired state after %v\n", round(time.Since(started)))
	if err := WaitHubSees(wctx, c, ids); err != nil {
		return err
	}
	fmt.Fprintf(out, "hub: sees all %d kiosks online after %v\n", len(ids), round(time.Since(started)))

	switch cfg.Mode {
	case ModeFanout:
		tree, err := c.Org(ctx)
		if err != nil {
			return err
		}
		res, err := Fanout(ctx, fl, c, tree.Root, cfg.Notices, cfg.Timeout)
		res.Print(out)
		return err
	default:
		perAgent := (cfg.Records + len(ids) - 1) / len(ids)
		res, err := Ingest(ctx, fl, c, perAgent, cfg.Concurrency, cfg.Timeout)
		res.Print(out)
		return err
	}
}

func kioskIDs(ctx context.Context, cfg Config, c *Client) ([]string, error) {
	ids := cfg.Kiosks
	switch {
	case len(ids) > 0:
	case cfg.OrgFile != "":
		data, err := readFile(cfg.OrgFile, orgfile.MaxFileSize)
		if err != nil {
			return nil, err
		}
		t, err := orgfile.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("load: %s: %w", cfg.OrgFile, err)
		}
		ids = t.Kiosks
	default:
		ks, err := c.Kiosks(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			if k.InOrgTree {
				ids = append(ids, k.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("load: no kiosks to simulate")
	}
	if cfg.N > len(ids) {
		return nil, fmt.Errorf("load: -n %d but only %d kiosks known", cfg.N, len(ids))
	}
	if cfg.N > 0 {
		ids = ids[:cfg.N]
	}
	return ids, nil
}

func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("load: read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("load: %s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// ParseKioskList expands a comma-separated list of kiosk ids and ranges:
// "k-0001..k-1000" is every id from k-0001 to k-1000, both ends of a range
// having the same prefix and a numeric suffix of the same width.
func ParseKioskList(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(id string) error {
		if err := protocol.ValidID(id); err != nil {
			return fmt.Errorf("load: kiosk list: %w", err)
		}
		if seen[id] {
			return fmt.Errorf("load: kiosk list: %q given twice", id)
		}
		if len(out) >= MaxKioskList {
			return fmt.Errorf("load: kiosk list: more than %d ids", MaxKioskList)
		}
		seen[id] = true
		out = append(out, id)
		return nil
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		from, to, isRange := strings.Cut(item, "..")
		if !isRange {
			if err := add(item); err != nil {
				return nil, err
			}
			continue
		}
		pf, nf, wf := splitNumber(from)
		pt, nt, wt := splitNumber(to)
		if wf == 0 || pf != pt || wf != wt || nf > nt {
			return nil, fmt.Errorf("load: kiosk range %q: want PREFIX0001..PREFIX0100, same prefix and digit count, ascending", item)
		}
		if nt-nf >= MaxKioskList {
			return nil, fmt.Errorf("load: kiosk range %q: more than %d ids", item, MaxKioskList)
		}
		for n := nf; n <= nt; n++ {
			if err := add(fmt.Sprintf("%s%0*d", pf, wf, n)); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("load: kiosk list is empty")
	}
	return out, nil
}

// splitNumber splits s into a prefix and a trailing decimal number of
// width digits (width 0 when s ends in no digit or the number overflows).
func splitNumber(s string) (prefix string, n, width int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 9 {
		return s, 0, 0
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, 0, 0
	}
	return s[:i], n, len(s) - i
}

// WaitHubSees polls the hub's kiosk list until every kiosk of ids is online
// and has sent a heartbeat, so the hub has taken in the fleet's connection
// burst before anything is measured.
func WaitHubSees(ctx context.Context, c *Client, ids []string) error {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ks, err := c.Kiosks(ctx)
		if err != nil {
			return err
		}
		seen := 0
		for _, k := range ks {
			if want[k.ID] && k.Online && k.SoftwareVersion != "" {
				seen++
			}
		}
		if seen == len(ids) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load: waiting for the hub to see the fleet: %w (%d of %d online with a heartbeat)",
				ctx.Err(), seen, len(ids))
		case <-tick.C:
		}
	}
}

// NoticeSample is one notice sent and seen on every agent.
type NoticeSample struct {
	ID      string
	Request time.Duration // POST until the hub replied (it replies once all is published)
	Fanout  time.Duration // POST until the last agent held the notice in its database
}

// SendNotice creates a notice aimed at target through the hub API and waits
// until every agent of the fleet holds it.
func SendNotice(ctx context.Context, fl *fleetsim.Fleet, c *Client, target protocol.Target, title string) (NoticeSample, error) {
	t0 := time.Now()
	id, err := c.CreateNotice(ctx, NoticeRequest{
		Title: title, Body: "负载测试通知，请忽略。Load test notice, please ignore.",
		Category: protocol.NoticePublicity, Priority: protocol.PriorityNormal,
		Targets: []protocol.Target{target},
	})
	if err != nil {
		return NoticeSample{}, err
	}
	s := NoticeSample{ID: id, Request: time.Since(t0)}
	s.Fanout, err = fl.WaitNotice(ctx, id, t0)
	return s, err
}

// FanoutResult is the outcome of a fan-out run.
type FanoutResult struct {
	Agents        int
	Samples       []NoticeSample
	P50, P95, Max time.Duration // of Fanout
	Withdrawn     int
}

// Fanout sends n notices aimed at target one after another, each once the
// one before is on every agent, then withdraws them. Each wait is bounded
// by timeout.
func Fanout(ctx context.Context, fl *fleetsim.Fleet, c *Client, target protocol.Target, n int, timeout time.Duration) (FanoutResult, error) {
	res := FanoutResult{Agents: fl.Len()}
	var (
		errs []error
		sent []string
	)
	for i := range n {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		s, err := SendNotice(wctx, fl, c, target, fmt.Sprintf("负载测试通知 %d/%d", i+1, n))
		cancel()
		if s.ID != "" {
			sent = append(sent, s.ID)
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
		res.Samples = append(res.Samples, s)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, id := range sent {
		if err := c.WithdrawNotice(wctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Withdrawn++
	}
	var d []time.Duration
	for _, s := range res.Samples {
		d = append(d, s.Fanout)
	}
	res.P50, res.P95, res.Max = Percentile(d, 50), Percentile(d, 95), Percentile(d, 100)
	return res, errors.Join(errs...)
}

// Print writes the figures.
func (r FanoutResult) Print(w io.Writer) {
	for i, s := range r.Samples {
		fmt.Fprintf(w, "notice %d %s: hub replied after %v, on all %d agents after %v\n",
			i+1, s.ID, round(s.Request), r.Agents, round(s.Fanout))
	}
	fmt.Fprintf(w, "fanout: %d notices to %d agents: p50 %v, p95 %v, max %v (%d withdrawn again)\n",
		len(r.Samples), r.Agents, round(r.P50), round(r.P95), round(r.Max), r.Withdrawn)
}

// Percentile returns the p-th percentile (nearest rank) of d; 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// Tally compares the records submitted with what the hub stored.
type Tally struct {
	Submitted  int      // receipts
	Stored     int      // receipts found exactly once at the hub
	Lost       int      // receipts not found at the hub (or found with another ticket)
	Duplicates int      // extra copies of a receipt's record at the hub
	Extra      int      // records of the fleet's kiosks submitted during the run that no receipt names
	Examples   []string // a few ids of lost, duplicated or extra records
}

// OK reports whether every record arrived exactly once and nothing else.
func (t Tally) OK() bool {
	return t.Stored == t.Submitted && t.Lost == 0 && t.Duplicates == 0 && t.Extra == 0
}

func (t *Tally) example(kind, id string) {
	if len(t.Examples) < 10 {
		t.Examples = append(t.Examples, kind+" "+id)
	}
}

// verifyConcurrency is how many kiosks' records are fetched at once.
const verifyConcurrency = 8

// Verify fetches the records of every kiosk of the fleet from the hub API
// and checks each receipt's record is there exactly once, with its ticket,
// and that no other record of these kiosks submitted since since is there.
// It fails if a kiosk has more records since since than the API lists at
// once (MaxFeedbackLimit).
func Verify(ctx context.Context, c *Client, kiosks []string, receipts []fleetsim.Receipt, since time.Time) (Tally, error) {
	byKiosk := make(map[string][]fleetsim.Receipt)
	for _, r := range receipts {
		byKiosk[r.Kiosk] = append(byKiosk[r.Kiosk], r)
	}
	t := Tally{Submitted: len(receipts)}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan string)
	for range verifyConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				rows, err := c.Feedback(ctx, k, MaxFeedbackLimit)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if err := t.add(k, byKiosk[k], rows, since); err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range kiosks {
		work <- k
	}
	close(work)
	wg.Wait()
	for k := range byKiosk {
		if !slices.Contains(kiosks, k) {
			errs = append(errs, fmt.Errorf("load: verify: receipts of kiosk %s, which is not in the fleet", k))
		}
	}
	return t, errors.Join(errs...)
}

// add tallies one kiosk's receipts against the rows the hub listed for it.
func (t *Tally) add(kiosk string, receipts []fleetsim.Receipt, rows []FeedbackRow, since time.Time) error {
	if len(rows) >= MaxFeedbackLimit && !rows[len(rows)-1].SubmittedAt.Before(since) {
		return fmt.Errorf("load: verify: kiosk %s has more records since the start than the hub lists at once (%d)",
			kiosk, MaxFeedbackLimit)
	}
	count := make(map[string]int, len(rows))
	ticket := make(map[string]string, len(rows))
	for _, r := range rows {
		count[r.ID]++
		ticket[r.ID] = r.Ticket
	}
	mine := make(map[string]bool, len(receipts))
	for _, r := range receipts {
		mine[r.ID] = true
		switch n := count[r.ID]; {
		case n == 0 || ticket[r.ID] != r.Ticket:
			t.Lost++
			t.example("lost", r.ID)
		case n > 1:
			t.Stored++
			t.Duplicates += n - 1
			t.example("duplicated", r.ID)
		default:
			t.Stored++
		}
	}
	for _, r := range rows {
		if !mine[r.ID] && !r.SubmittedAt.Before(since) {
			t.Extra++
			t.example("extra", r.ID)
		}
	}
	return nil
}

// IngestResult is the outcome of an ingestion run.
type IngestResult struct {
	Agents    int
	Records   int
	Submit    time.Duration // until every record was durable in its agent's outbox
	Total     time.Duration // until every outbox was empty: all stored and acknowledged by the hub
	PerSecond float64       // Records / Total
	Tally     Tally
}

// Ingest has every agent submit perAgent records, waits until the hub has
// stored and acknowledged them all (every outbox empty), and checks through
// the hub API that each arrived exactly once. It fails with ErrLoss when
// any did not.
func Ingest(ctx context.Context, fl *fleetsim.Fleet, c *Client, perAgent, concurrency int, timeout time.Duration) (IngestResult, error) {
	res := IngestResult{Agents: fl.Len()}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	since := time.Now()
	receipts, err := fl.Submit(wctx, perAgent, concurrency)
	res.Records = len(receipts)
	res.Submit = time.Since(since)
	if err == nil {
		err = fl.WaitDrained(wctx)
	}
	res.Total = time.Since(since)
	if res.Total > 0 {
		res.PerSecond = float64(res.Records) / res.Total.Seconds()
	}
	tally, verr := Verify(ctx, c, fl.KioskIDs(), receipts, since)
	res.Tally = tally
	if err := errors.Join(err, verr); err != nil {
		return res, err
	}
	if !tally.OK() {
		return res, fmt.Errorf("%w: %d submitted, %d stored, %d lost, %d duplicates, %d extra (%s)", ErrLoss,
			tally.Submitted, tally.Stored, tally.Lost, tally.Duplicates, tally.Extra, strings.Join(tally.Examples, ", "))
	}
	return res, nil
}

// Print writes the figures.
func (r IngestResult) Print(w io.Writer) {
	fmt.Fprintf(w, "ingest: %d records from %d agents: in outboxes after %v, stored and acknowledged by the hub after %v: %.0f records/s\n",
		r.Records, r.Agents, round(r.Submit), round(r.Total), r.PerSecond)
	fmt.Fprintf(w, "ingest: %d stored once, %d lost, %d duplicates, %d extra\n",
		r.Tally.Stored, r.Tally.Lost, r.Tally.Duplicates, r.Tally.Extra)
	if r.Tally.Lost > 0 {
		fmt.Fprintln(w, "ingest: note: a record the hub refused is in its agent's dead letters, "+
			"not at the hub; see the hub's log")
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}
