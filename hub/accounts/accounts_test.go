package accounts

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
)

// fastParams keep tests quick; DefaultParams are tested on their own.
var fastParams = Params{Memory: 64, Time: 1, Threads: 1}

// clock is a controllable clock safe for use from handler goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	svc   *Service
	store *store.SQLite
	clock *clock
	tree  *orgtree.Tree
}

func newFixture(t *testing.T, mod func(*Config)) fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)}
	cfg := Config{Store: st, Tree: tree, Secret: []byte(strings.Repeat("s", 32)), Now: c.Now, Params: fastParams}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: st, clock: c, tree: tree}
}

const goodPassword = "correct horse battery"

func (f fixture) create(t *testing.T, username string, role Role, node string) Account {
	t.Helper()
	a, err := f.svc.CreateAccount(context.Background(), "cli", NewAccount{Username: username, Role: role, Node: node, Password: goodPassword})
	if err != nil {
		t.Fatalf("CreateAccount %s: %v", username, err)
	}
	return a
}

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword(goodPassword, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Errorf("default hash %q does not carry the default parameters", h1)
	}
	h2, err := HashPassword(goodPassword, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	p, salt, key, err := ParseHash(h2)
	if err != nil || p != fastParams || len(salt) != saltLen || len(key) != keyLen {
		t.Errorf("ParseHash = %+v, %d-byte salt, %d-byte key, %v", p, len(salt), len(key), err)
	}
	h3, err := HashPassword(goodPassword, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h3 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		name, hash, pw string
		want           bool
	}{
		{"default params, right", h1, goodPassword, true},
		{"default params, wrong", h1, goodPassword + "!", false},
		{"fast params, right", h2, goodPassword, true},
		{"fast params, wrong", h2, "correct horse batterx", false},
		{"empty password", h2, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPassword(tc.hash, tc.pw)
			if err != nil || got != tc.want {
				t.Errorf("VerifyPassword = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseHashRejects(t *testing.T) {
	ok, err := HashPassword(goodPassword, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(ok, "$")
	join := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv"},
		{"argon2i", join(1, "argon2i")},
		{"old version", join(2, "v=16")},
		{"huge memory", join(3, "m=4294967295,t=1,p=1")},
		{"zero time", join(3, "m=64,t=0,p=1")},
		{"trailing params", join(3, "m=64,t=1,p=1,x=2")},
		{"bad salt", join(4, "!!!")},
		{"short key", join(5, "AAAA")},
		{"extra part", ok + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyPassword(tc.hash, goodPassword); !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword(%q) error = %v, want ErrBadHash", tc.hash, err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, pw string
		ok       bool
	}{
		{"nine ASCII", "123456789", false},
		{"ten ASCII", "1234567890", true},
		{"ten Chinese characters", "上海城管社区执法工作室", true},
		{"nine Chinese characters", "上海城管社区执法工", false},
		{"too long", strings.Repeat("x", MaxPasswordLength+1), false},
		{"invalid UTF-8", "abcdefghij\xff", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.pw)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrWeakPassword)) {
				t.Errorf("CheckPassword = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestScope checks CanSee over the demo org tree.
func TestScope(t *testing.T) {
	f := newFixture(t, nil)
	admin := f.create(t, "admin", RoleBureauAdmin, "shanghai")
	hp := f.create(t, "hp-admin", RoleDistrictAdmin, "huangpu")
	officer := f.create(t, "wlq-officer", RoleOfficer, "wuliqiao")
	ruiyi := f.create(t, "ruiyi-partner", RolePartner, "ruiyi")
	tech := f.create(t, "tech", RoleTechnician, "huangpu")
	for _, tc := range []struct {
		name string
		acct Account
		node string
		want bool
	}{
		{"bureau admin sees a community", admin, "sangcheng", true},
		{"huangpu admin sees sangcheng", hp, "sangcheng", true},
		{"huangpu admin sees a sangcheng kiosk", hp, "k-sangcheng-01", true},
		{"huangpu admin sees huangpu", hp, "huangpu", true},
		{"huangpu admin does not see the city", hp, "shanghai", false},
		{"street officer sees sangcheng", officer, "sangcheng", true},
		{"street officer does not see the district", officer, "huangpu", false},
		{"ruiyi partner does not see sangcheng", ruiyi, "sangcheng", false},
		{"ruiyi partner sees ruiyi", ruiyi, "ruiyi", true},
		{"ruiyi partner does not see the street", ruiyi, "wuliqiao", false},
		{"technician sees within its node", tech, "ruiyi", true},
		{"unknown node is seen by nobody", admin, "nowhere", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.svc.CanSee(tc.acct, tc.node); got != tc.want {
				t.Errorf("CanSee(%s at %s, %s) = %v, want %v", tc.acct.Role, tc.acct.Node, tc.node, got, tc.want)
			}
			p := f.svc.Principal(tc.acct)
			if got := p.CanSee(tc.node); got != tc.want || p.Role() != string(tc.acct.Role) || p.ID() != tc.acct.ID {
				t.Errorf("Principal = %v %s %s", got, p.Role(), p.ID())
			}
		})
	}
	if !f.svc.CanManage(hp, officer) || f.svc.CanManage(hp, admin) || f.svc.CanManage(officer, ruiyi) || !f.svc.CanManage(admin, hp) {
		t.Error("CanManage: district admin manages its officers only; officers manage nobody; bureau admin manages all")
	}
}

// scope is the interface hub/cases asks of an actor; a Principal must meet it.
type scope interface {
	CanSee(node string) bool
	Role() string
	ID() string
}

var _ scope = Principal{}

func TestCreateAccountRules(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "taken", RoleOfficer, "wuliqiao")
	for _, tc := range []struct {
		name string
		n    NewAccount
		want error
	}{
		{"partner at a street", NewAccount{Username: "p1", Role: RolePartner, Node: "wuliqiao", Password: goodPassword}, ErrInvalid},
		{"officer at a community", NewAccount{Username: "o1", Role: RoleOfficer, Node: "sangcheng", Password: goodPassword}, ErrInvalid},
		{"district admin at the city", NewAccount{Username: "d1", Role: RoleDistrictAdmin, Node: "shanghai", Password: goodPassword}, ErrInvalid},
		{"technician at a kiosk", NewAccount{Username: "t1", Role: RoleTechnician, Node: "k-sangcheng-01", Password: goodPassword}, ErrInvalid},
		{"unknown role", NewAccount{Username: "xx1", Role: "mayor", Node: "shanghai", Password: goodPassword}, ErrInvalid},
		{"unknown node", NewAccount{Username: "xx2", Role: RoleBureauAdmin, Node: "beijing", Password: goodPassword}, ErrInvalid},
		{"bad username", NewAccount{Username: "Admin Zhang", Role: RoleBureauAdmin, Node: "shanghai", Password: goodPassword}, ErrInvalid},
		{"short password", NewAccount{Username: "xx3", Role: RoleBureauAdmin, Node: "shanghai", Password: "123456789"}, ErrWeakPassword},
		{"username taken", NewAccount{Username: "taken", Role: RoleOfficer, Node: "wuliqiao", Password: goodPassword}, store.ErrUsernameTaken},
		{"squad leader at a street", NewAccount{Username: "leader", Role: RoleSquadLeader, Node: "wuliqiao", Password: goodPassword}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreateAccount(context.Background(), "cli", tc.n)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("CreateAccount = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLockout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	a := f.create(t, "officer", RoleOfficer, "wuliqiao")
	login := func(pw string) error {
		_, _, err := f.svc.Login(ctx, "officer", pw, "10.0.0.1")
		return err
	}
	for i := range 4 {
		if err := login("wrong password!"); !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrLocked) {
			t.Fatalf("wrong login #%d: %v, want ErrBadCredentials only", i+1, err)
		}
	}
	if err := login(goodPassword); err != nil {
		t.Fatalf("right password after 4 failures: %v", err)
	}
	// The success cleared the failures: four more do not lock.
	for range 4 {
		f.clock.Add(time.Minute)
		if err := login("wrong password!"); errors.Is(err, ErrLocked) || !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong login after success: %v", err)
		}
	}
	// Failures spread past the window do not lock either: the oldest of the
	// four fell out by the time of the fifth.
	f.clock.Add(13 * time.Minute)
	if err := login("wrong password!"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if err := login(goodPassword); err != nil {
		t.Fatalf("right password with failures spread over more than 15 minutes: %v", err)
	}
	for range 5 {
		f.clock.Add(time.Second)
		if err := login("wrong password!"); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	if err := login(goodPassword); !errors.Is(err, ErrLocked) || !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("right password while locked: %v, want ErrLocked and ErrBadCredentials", err)
	}
	f.clock.Add(14 * time.Minute)
	if err := login(goodPassword); !errors.Is(err, ErrLocked) {
		t.Fatalf("after 14 minutes: %v, want still locked", err)
	}
	f.clock.Add(time.Minute)
	if err := login(goodPassword); err != nil {
		t.Fatalf("after 15 minutes: %v, want unlocked", err)
	}
	log, err := f.store.AuditLog(ctx, "account:"+a.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range log {
		count[e.Action]++
		if e.Action == "account.lock" {
			if e.Actor != "system" || !strings.Contains(e.Before, `"role":"officer"`) || strings.Contains(e.Before, "locked_until") ||
				!strings.Contains(e.After, `"locked_until":"2026-07-01T09:`) {
				t.Errorf("lock entry = %+v", e)
			}
		}
		if strings.Contains(e.Before+e.After, "argon2") || strings.Contains(e.Before+e.After, goodPassword) {
			t.Errorf("audit entry leaks a password or hash: %+v", e)
		}
	}
	if count["account.lock"] != 1 || count["login.success"] != 3 || count["login.failure"] != 16 || count["account.create"] != 1 {
		t.Errorf("audit actions = %v; want 1 lock, 3 successes, 16 failures (14 wrong + 2 while locked), 1 create", count)
	}
}

func TestUnknownUserAudited(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	if _, _, err := f.svc.Login(ctx, "ghost", goodPassword, "10.0.0.9"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	log, err := f.store.AuditLog(ctx, "username:ghost", 10)
	if err != nil || len(log) != 1 || log[0].Action != "login.failure" || log[0].Actor != "ip:10.0.0.9" {
		t.Errorf("audit = %+v, %v", log, err)
	}
}

func TestSessionExpiry(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		steps []time.Duration // waits, each followed by a request
		alive []bool
	}{
		{"used within the idle timeout", []time.Duration{29 * time.Minute, 29 * time.Minute}, []bool{true, true}},
		{"a use within a minute of the last is not written", []time.Duration{30 * time.Second, 29*time.Minute + 40*time.Second}, []bool{true, false}},
		{"idle for 30 minutes", []time.Duration{10 * time.Minute, 30 * time.Minute, 0}, []bool{true, false, false}},
		{"kept busy up to the absolute limit", append(repeat(20*time.Minute, 35), 20*time.Minute), append(repeatBool(true, 35), false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.create(t, "officer", RoleOfficer, "wuliqiao")
			token, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.steps {
				f.clock.Add(d)
				_, err := f.svc.Authenticate(ctx, token)
				if alive := err == nil; alive != tc.alive[i] || (err != nil && !errors.Is(err, ErrNoSession)) {
					t.Fatalf("step %d (+%v): Authenticate = %v, want alive=%v", i, d, err, tc.alive[i])
				}
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func repeatBool(b bool, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestExpireSessions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.create(t, "officer", RoleOfficer, "wuliqiao")
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(20 * time.Minute)
	live, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(15 * time.Minute)
	if n, err := f.svc.ExpireSessions(ctx); err != nil || n != 1 {
		t.Errorf("ExpireSessions = %d, %v; want 1", n, err)
	}
	if _, err := f.svc.Authenticate(ctx, live); err != nil {
		t.Errorf("the live session was expired: %v", err)
	}
}

func TestAuditBeforeAfter(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	a := f.create(t, "officer", RoleOfficer, "wuliqiao")
	token, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetRole(ctx, "account:boss", a.ID, RoleSquadLeader, "wuliqiao"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Errorf("session after a role change: %v, want ErrNoSession", err)
	}
	if _, err := f.svc.Lock(ctx, "account:boss", a.ID, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Unlock(ctx, "account:boss", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetPassword(ctx, "account:boss", a.ID, "short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("SetPassword short: %v", err)
	}
	if _, err := f.svc.SetRole(ctx, "account:boss", "missing", RoleOfficer, "wuliqiao"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetRole of a missing account: %v", err)
	}
	log, err := f.store.AuditLog(ctx, "account:"+a.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ action, actor, before, after string }
	wants := []want{
		{"account.unlock", "account:boss", `"locked_until":"2026-07-01T10:00:00Z"`, `"role":"squad_leader"`},
		{"account.lock", "account:boss", `"role":"squad_leader"`, `"locked_until":"2026-07-01T10:00:00Z"`},
		{"account.set_role", "account:boss", `"role":"officer"`, `"role":"squad_leader"`},
		{"login.success", "account:" + a.ID, "", `"ip":"10.0.0.1"`},
		{"account.create", "cli", "", `"username":"officer"`},
	}
	if len(log) != len(wants) {
		t.Fatalf("audit log has %d entries, want %d: %+v", len(log), len(wants), log)
	}
	for i, w := range wants {
		e := log[i]
		if e.Action != w.action || e.Actor != w.actor || !strings.Contains(e.Before, w.before) || !strings.Contains(e.After, w.after) ||
			(w.before == "" && e.Before != "") || !e.At.Equal(f.clock.Now()) {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if strings.Contains(log[0].After, "locked_until") {
		t.Errorf("unlock entry after still locked: %s", log[0].After)
	}
}

func TestLoginRateLimitedPerIP(t *testing.T) {
	ctx := context.Background()
	// One attempt a minute in bursts of two: the third at once is refused.
	lim := ratelimit.New(1, 2, 1000, 1000, nil)
	f := newFixture(t, func(c *Config) { c.Limiter = lim })
	f.create(t, "officer", RoleOfficer, "wuliqiao")
	for i, want := range []error{ErrBadCredentials, ErrBadCredentials, ErrRateLimited} {
		if _, _, err := f.svc.Login(ctx, "officer", "wrong password", "10.0.0.7"); !errors.Is(err, want) {
			t.Errorf("attempt %d: %v, want %v", i+1, err, want)
		}
	}
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.8"); err != nil {
		t.Errorf("another IP: %v", err)
	}
}
