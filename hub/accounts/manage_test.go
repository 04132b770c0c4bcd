package accounts

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

// twoDistricts is an org tree with two districts, for scope tests.
const twoDistricts = `{"version": 1, "root": {"id": "shanghai", "name": "上海市", "level": "city", "children": [
  {"id": "huangpu", "name": "黄浦区", "level": "district", "children": [
    {"id": "wuliqiao", "name": "五里桥街道", "level": "street", "children": [
      {"id": "sangcheng", "name": "桑城居委", "level": "community", "station": {"name": "桑城工作室"},
       "children": [{"id": "k-sangcheng-01", "name": "桑城大厅", "level": "kiosk"}]}]}]},
  {"id": "xuhui", "name": "徐汇区", "level": "district", "children": [
    {"id": "tianping", "name": "天平路街道", "level": "street", "children": [
      {"id": "hengfu", "name": "衡复居委", "level": "community", "station": {"name": "衡复工作室"}}]}]}]}}`

// manageFixture is a service on the two-district tree with one account of
// each kind the tests manage.
func manageFixture(t *testing.T) (fixture, map[string]Account) {
	t.Helper()
	tree, err := orgtree.Parse([]byte(twoDistricts))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Tree = tree })
	f.tree = tree
	accts := map[string]Account{}
	for _, a := range []struct {
		name string
		role Role
		node string
	}{
		{"bureau", RoleBureauAdmin, "shanghai"},
		{"bureau2", RoleBureauAdmin, "shanghai"},
		{"huangpu", RoleDistrictAdmin, "huangpu"},
		{"huangpu2", RoleDistrictAdmin, "huangpu"},
		{"xuhui", RoleDistrictAdmin, "xuhui"},
		{"squad", RoleSquadLeader, "wuliqiao"},
		{"officer", RoleOfficer, "wuliqiao"},
		{"partner", RolePartner, "sangcheng"},
		{"officer-xh", RoleOfficer, "tianping"},
		{"tech", RoleTechnician, "shanghai"},
	} {
		accts[a.name] = f.create(t, a.name, a.role, a.node)
	}
	return f, accts
}

func usernames(as []Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Username)
	}
	return out
}

func TestGrantableAndManageable(t *testing.T) {
	f, accts := manageFixture(t)
	tests := []struct {
		actor  string
		roles  []Role
		manage []string
		nodes  []string
	}{
		{"bureau", Roles, []string{"bureau2", "huangpu", "huangpu2", "officer", "officer-xh", "partner", "squad", "tech", "xuhui"},
			[]string{"shanghai", "huangpu", "wuliqiao", "sangcheng", "xuhui", "tianping", "hengfu"}},
		{"huangpu", []Role{RoleSquadLeader, RoleOfficer, RolePartner, RoleTechnician}, []string{"officer", "partner", "squad"},
			[]string{"huangpu", "wuliqiao", "sangcheng"}},
		{"xuhui", []Role{RoleSquadLeader, RoleOfficer, RolePartner, RoleTechnician}, []string{"officer-xh"},
			[]string{"xuhui", "tianping", "hengfu"}},
		{"squad", nil, nil, []string{"wuliqiao", "sangcheng"}},
		{"officer", nil, nil, []string{"wuliqiao", "sangcheng"}},
		{"tech", nil, nil, []string{"shanghai", "huangpu", "wuliqiao", "sangcheng", "xuhui", "tianping", "hengfu"}},
	}
	for _, tc := range tests {
		t.Run(tc.actor, func(t *testing.T) {
			a := accts[tc.actor]
			if got := f.svc.GrantableRoles(a); !slices.Equal(got, tc.roles) {
				t.Errorf("GrantableRoles = %v, want %v", got, tc.roles)
			}
			got, err := f.svc.Manageable(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(usernames(got), tc.manage) {
				t.Errorf("Manageable = %v, want %v", usernames(got), tc.manage)
			}
			var nodes []string
			for _, n := range f.svc.ScopeNodes(a) {
				nodes = append(nodes, n.ID)
			}
			if !slices.Equal(nodes, tc.nodes) {
				t.Errorf("ScopeNodes = %v, want %v", nodes, tc.nodes)
			}
		})
	}
}

func TestManagedChanges(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	future := f.clock.Now().Add(24 * time.Hour)
	type op func(actor Account) error
	create := func(role Role, node string) op {
		return func(actor Account) error {
			_, err := f.svc.CreateAccountAs(ctx, actor, NewAccount{Username: "new-" + string(role) + "-" + node + "-" + actor.Username,
				Role: role, Node: node, Password: goodPassword})
			return err
		}
	}
	setRole := func(target string, role Role, node string) op {
		return func(actor Account) error {
			_, err := f.svc.SetRoleAs(ctx, actor, accts[target].ID, role, node)
			return err
		}
	}
	lock := func(target string, until time.Time) op {
		return func(actor Account) error {
			_, err := f.svc.LockAs(ctx, actor, accts[target].ID, until)
			return err
		}
	}
	tests := []struct {
		name  string
		actor string
		op    op
		want  error // nil: allowed
	}{
		{"district creates an officer on its street", "huangpu", create(RoleOfficer, "wuliqiao"), nil},
		{"district creates an officer in another district", "huangpu", create(RoleOfficer, "tianping"), ErrForbidden},
		{"district creates a district admin", "huangpu", create(RoleDistrictAdmin, "huangpu"), ErrForbidden},
		{"officer at a district node", "huangpu", create(RoleOfficer, "huangpu"), ErrInvalid},
		{"squad leader creates an officer", "squad", create(RoleOfficer, "wuliqiao"), ErrForbidden},
		{"bureau creates a bureau admin", "bureau", create(RoleBureauAdmin, "shanghai"), nil},
		{"district promotes an officer to leader", "huangpu", setRole("officer", RoleSquadLeader, "wuliqiao"), nil},
		{"district promotes a leader to district admin", "huangpu", setRole("squad", RoleDistrictAdmin, "huangpu"), ErrForbidden},
		{"district moves an officer to another district", "huangpu", setRole("partner", RoleOfficer, "tianping"), ErrForbidden},
		{"district changes another district's officer", "xuhui", setRole("officer", RoleOfficer, "tianping"), store.ErrNotFound},
		{"district changes a peer", "huangpu", setRole("huangpu2", RoleTechnician, "huangpu"), store.ErrNotFound},
		{"district changes its own role", "huangpu", setRole("huangpu", RoleTechnician, "huangpu"), ErrForbidden},
		{"bureau changes its own role", "bureau", setRole("bureau", RoleBureauAdmin, "shanghai"), ErrForbidden},
		{"squad leader changes an officer", "squad", setRole("officer", RoleOfficer, "wuliqiao"), ErrForbidden},
		{"huangpu locks xuhui's officer", "huangpu", lock("officer-xh", future), store.ErrNotFound},
		{"lock in the past", "xuhui", lock("officer-xh", f.clock.Now().Add(-time.Minute)), ErrInvalid},
		{"xuhui locks its officer", "xuhui", lock("officer-xh", future), nil},
		{"district locks itself", "xuhui", lock("xuhui", future), ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(accts[tc.actor])
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The refused changes left no trace; the allowed ones are audited with
	// the actor.
	log, err := f.store.AuditLog(ctx, "account:"+accts["officer"].ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Action != "account.set_role" || log[0].Actor != "account:"+accts["huangpu"].ID {
		t.Errorf("officer's audit log: %+v", log)
	}
	if a, err := f.svc.Account(ctx, accts["squad"].ID); err != nil || a.Role != RoleSquadLeader {
		t.Errorf("squad after refused changes: %+v %v", a, err)
	}
}

func TestUnlockAndResetAs(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	boss, officer := accts["huangpu"], accts["officer"]
	token, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LockAs(ctx, boss, officer.ID, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Errorf("session of a locked account: %v", err)
	}
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1"); !errors.Is(err, ErrLocked) {
		t.Errorf("login of a locked account: %v", err)
	}
	if _, err := f.svc.UnlockAs(ctx, accts["xuhui"], officer.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("xuhui unlocks huangpu's officer: %v", err)
	}
	if _, err := f.svc.UnlockAs(ctx, boss, officer.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetPasswordAs(ctx, boss, officer.ID, "short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("weak reset: %v", err)
	}
	pw := GeneratePassword()
	if _, err := f.svc.SetPasswordAs(ctx, boss, officer.ID, pw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after a reset: %v", err)
	}
	if _, _, err := f.svc.Login(ctx, "officer", pw, "10.0.0.1"); err != nil {
		t.Errorf("new password after a reset: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	a := accts["officer"]
	const next = "a much better passphrase"
	other, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.ChangePassword(ctx, a.ID, goodPassword, "short", "10.0.0.2"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("weak new password: %v", err)
	}
	if _, _, err := f.svc.ChangePassword(ctx, a.ID, "wrong password", next, "10.0.0.2"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong current password: %v", err)
	}
	token, _, err := f.svc.ChangePassword(ctx, a.ID, goodPassword, next, "10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, other); !errors.Is(err, ErrNoSession) {
		t.Errorf("other session after a password change: %v", err)
	}
	if got, err := f.svc.Authenticate(ctx, token); err != nil || got.ID != a.ID {
		t.Errorf("new session: %+v %v", got, err)
	}
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password: %v", err)
	}
	if _, _, err := f.svc.Login(ctx, "officer", next, "10.0.0.1"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if c := f.svc.SessionCookie(token); c.Value != token || !c.Secure || !c.HttpOnly || c.Name != CookieName {
		t.Errorf("SessionCookie = %+v", c)
	}
}

func TestChangePasswordLocksAfterFailures(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	a := accts["officer"]
	for i := range 5 {
		if _, _, err := f.svc.ChangePassword(ctx, a.ID, "wrong password", "a much better passphrase", "10.0.0.2"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1"); !errors.Is(err, ErrLocked) {
		t.Errorf("login after five wrong current passwords: %v, want ErrLocked", err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	boss, officer := accts["huangpu"], accts["officer"]
	if _, err := f.svc.SetRoleAs(ctx, boss, officer.ID, RoleSquadLeader, "wuliqiao"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetPasswordAs(ctx, boss, officer.ID, GeneratePassword()); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.History(ctx, officer.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Actor: "account:" + boss.ID, Action: "account.set_password"},
		{Actor: "account:" + boss.ID, Action: "account.set_role", Fields: []FieldChange{{"role", "officer", "squad_leader"}}},
		{Actor: "cli", Action: "account.create", Fields: []FieldChange{{"display_name", "", ""}, {"node", "", "wuliqiao"},
			{"role", "", "officer"}, {"username", "", "officer"}}},
	}
	// display_name is empty on both sides for this account, so it is no
	// change.
	want[2].Fields = want[2].Fields[1:]
	if len(h) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(h), len(want), h)
	}
	for i, w := range want {
		g := h[i]
		if g.Actor != w.Actor || g.Action != w.Action || !slices.Equal(g.Fields, w.Fields) || !g.At.Equal(f.clock.Now()) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw := GeneratePassword()
		if err := CheckPassword(pw); err != nil {
			t.Fatalf("%q: %v", pw, err)
		}
		if len(pw) != 19 || seen[pw] {
			t.Fatalf("%q: wrong length or repeated", pw)
		}
		seen[pw] = true
	}
}

func TestRoleLevel(t *testing.T) {
	for _, r := range Roles {
		l, ok := r.Level()
		if ok == (r == RoleTechnician) {
			t.Errorf("%s.Level() = %q, %v", r, l, ok)
		}
	}
	if !ValidUsername("officer.a-1") || ValidUsername("Officer") || ValidUsername("ab") {
		t.Error("ValidUsername")
	}
}

// TestSetDisplayNameAs: an admin renames an account it manages, the name
// is trimmed and audited, the account's session stays; out-of-scope,
// self and malformed renames are refused and change nothing.
func TestSetDisplayNameAs(t *testing.T) {
	ctx := context.Background()
	f, accts := manageFixture(t)
	boss, officer := accts["huangpu"], accts["officer"]
	token, _, err := f.svc.Login(ctx, "officer", goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		actor Account
		id    string
		to    string
		want  error
	}{
		{"other district", accts["xuhui"], officer.ID, "李四", store.ErrNotFound},
		{"itself", boss, boss.ID, "王区长", ErrForbidden},
		{"squad leader", accts["squad"], officer.ID, "李四", store.ErrNotFound},
		{"too long", boss, officer.ID, string(make([]rune, 101)), ErrInvalid},
		{"control character", boss, officer.ID, "李\n四", ErrInvalid},
		{"invalid UTF-8", boss, officer.ID, "李\xff", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.SetDisplayNameAs(ctx, tc.actor, tc.id, tc.to); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	a, err := f.svc.SetDisplayNameAs(ctx, boss, officer.ID, "  李四（五里桥中队）  ")
	if err != nil {
		t.Fatal(err)
	}
	if a.DisplayName != "李四（五里桥中队）" {
		t.Errorf("display name %q, want it trimmed", a.DisplayName)
	}
	if got, err := f.svc.Authenticate(ctx, token); err != nil || got.DisplayName != "李四（五里桥中队）" {
		t.Errorf("the officer's session after a rename: %+v %v", got, err)
	}
	log, err := f.store.AuditLog(ctx, "account:"+officer.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[0].Action != "account.set_display_name" || log[0].Actor != "account:"+boss.ID {
		t.Fatalf("audit log after the rename: %+v", log)
	}
	if !strings.Contains(log[0].Before, `"display_name":"officer"`) && !strings.Contains(log[0].Before, `"display_name":""`) {
		t.Errorf("the audit entry does not hold the name before: %s", log[0].Before)
	}
	if !strings.Contains(log[0].After, "李四（五里桥中队）") {
		t.Errorf("the audit entry does not hold the name after: %s", log[0].After)
	}
}
