package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// The account pages: admins manage the accounts in their scope (those
// accounts.Service.CanManage allows: bureau and district admins, over
// roles below their own), every account changes its own password. Every
// change goes through accounts.Service, which checks it against CanManage
// and audits it; an account outside the actor's reach is 404.
//
// Passwords an admin sets (a new account's, a reset) are typed twice or,
// when both fields are left empty, generated and shown once on the reply
// page, never stored or shown again. Changing one's own password ends
// every other session of the account and keeps the current one, with a
// new session id.

// accountPages are the account pages and their layout.
var accountPages = map[string]string{
	"accounts": "desk", "account": "desk", "account_secret": "desk", "me_password": "desk",
}

// historyLimit is how many audit entries an account's page shows.
const historyLimit = 100

// maxLock is how far ahead a lock may end.
const maxLock = 10 * 366 * 24 * time.Hour

// accountDone are the notices a redirect after a change may ask the
// account pages to show (the done query parameter).
var accountDone = []string{"acct.created", "acct.renamed", "acct.role_set", "acct.password_set", "acct.locked", "acct.unlocked", "me.changed", "acct.2fa_reset"}

// accountMessages are the account pages' messages.
var accountMessages = htmlpage.Messages{
	"accounts":      {"账号管理", "Accounts"},
	"acct.none":     {"您的范围内暂无可管理的账号。", "No accounts you may manage."},
	"acct.new":      {"新建账号", "New account"},
	"acct.username": {"用户名", "Username"},
	"acct.username.help": {"3–32 个小写字母、数字或 . _ -，创建后不能修改。",
		"3–32 lower-case letters, digits or . _ -; cannot be changed later."},
	"acct.display":      {"姓名/显示名", "Display name"},
	"acct.role":         {"角色", "Role"},
	"acct.node":         {"所属组织", "Org unit"},
	"acct.node.help":    {"区局管理员选区，中队长和队员选街道（中队），共建单位选社区，运维人员可选任意一级。", "District admins hold a district, squad leaders and officers a street (squad), partners a community, technicians any level."},
	"acct.status":       {"状态", "Status"},
	"acct.active":       {"正常", "Active"},
	"acct.locked_until": {"锁定至", "Locked until"},
	"acct.password":     {"初始密码", "Initial password"},
	"acct.password2":    {"再次输入密码", "Password again"},
	"acct.password.help": {fmt.Sprintf("至少 %d 个字符；两栏都留空则由系统生成随机密码，只显示一次。", accounts.MinPasswordLength),
		fmt.Sprintf("At least %d characters; leave both empty to have a random one generated and shown once.", accounts.MinPasswordLength)},
	"acct.create":           {"创建账号", "Create the account"},
	"acct.details":          {"账号信息", "Account"},
	"acct.change_role":      {"调整角色或所属组织", "Change role or org unit"},
	"acct.change_role.help": {"调整后该账号的登录将全部退出。", "The account's sessions end after the change."},
	"acct.save":             {"保存", "Save"},
	"acct.reset":            {"重置密码", "Reset the password"},
	"acct.new_password":     {"新密码", "New password"},
	"acct.reset.help": {fmt.Sprintf("至少 %d 个字符；两栏都留空则由系统生成随机密码，只显示一次。重置后旧密码失效，该账号的登录全部退出。", accounts.MinPasswordLength),
		fmt.Sprintf("At least %d characters; leave both empty to have one generated and shown once. The old password stops working and the account's sessions end.", accounts.MinPasswordLength)},
	"acct.lock":        {"锁定账号", "Lock the account"},
	"acct.lock.until":  {"锁定至（含当日）", "Locked through (inclusive)"},
	"acct.lock.help":   {"锁定期间不能登录，现有登录立即退出。", "A locked account cannot log in; its sessions end at once."},
	"acct.unlock":      {"解除锁定", "Unlock"},
	"acct.history":     {"变更记录", "Audit trail"},
	"acct.change":      {"变更内容", "Change"},
	"acct.secret":      {"密码只显示这一次", "The password is shown only this once"},
	"acct.secret.help": {"请当面或通过可靠渠道告知本人，并提醒其登录后在“修改密码”中更换。离开本页后无法再次查看。", "Tell it to the person face to face or through a trusted channel and ask them to change it after logging in. It cannot be shown again once you leave this page."},
	"acct.secret.for":  {"账号", "Account"},
	"acct.open":        {"查看账号", "Open the account"},

	"acct.created":      {"账号已创建。", "Account created."},
	"acct.role_set":     {"角色和所属组织已更新。", "Role and org unit updated."},
	"acct.renamed":      {"姓名已更新。", "Display name updated."},
	"acct.rename":       {"修改姓名", "Change the display name"},
	"acct.rename.help":  {"显示在工单处理记录和工作台上，最多 30 个字；修改不影响登录。", "Shown on case timelines and in the console, at most 30 characters; the account stays logged in."},
	"acct.password_set": {"密码已重置。", "Password reset."},
	"acct.locked":       {"账号已锁定。", "Account locked."},
	"acct.unlocked":     {"账号已解除锁定。", "Account unlocked."},

	"acct.err.username": {"用户名须为 3–32 个小写字母、数字或 . _ -。", "A username has 3–32 lower-case letters, digits or . _ -."},
	"acct.err.display":  {"姓名/显示名最多 30 个字。", "A display name has at most 30 characters."},
	"acct.err.taken":    {"该用户名已被使用。", "The username is taken."},
	"acct.err.role":     {"请选择角色和所属组织。", "Pick a role and an org unit."},
	"acct.err.level":    {"该角色须选择以下一级的组织：", "This role must hold an org unit of level: "},
	"acct.err.weak": {fmt.Sprintf("密码至少 %d 个字符（最多 %d 字节）。", accounts.MinPasswordLength, accounts.MaxPasswordLength),
		fmt.Sprintf("A password has at least %d characters (at most %d bytes).", accounts.MinPasswordLength, accounts.MaxPasswordLength)},
	"acct.err.mismatch":  {"两次输入的密码不一致。", "The two passwords differ."},
	"acct.err.forbidden": {"您不能授予该角色或该范围，也不能修改自己的账号。", "You may not give this role or scope, nor change your own account."},
	"acct.err.date":      {"请选择今天或以后的日期（十年以内）。", "Pick today or a later date (within ten years)."},

	"me.password":    {"修改密码", "Change password"},
	"me.current":     {"当前密码", "Current password"},
	"me.new":         {"新密码", "New password"},
	"me.new2":        {"再次输入新密码", "New password again"},
	"me.help":        {fmt.Sprintf("至少 %d 个字符。修改后您在其他设备或浏览器上的登录将全部退出，本次登录保持有效。", accounts.MinPasswordLength), fmt.Sprintf("At least %d characters. Your sessions on other devices and browsers end; this one stays.", accounts.MinPasswordLength)},
	"me.changed":     {"密码已修改。您在其他设备或浏览器上的登录已全部退出。", "Password changed. Your sessions on other devices and browsers have ended."},
	"me.err.current": {"当前密码不正确。连续输错多次将锁定账号。", "The current password is wrong. Repeated mistakes lock the account."},
	"me.err.same":    {"新密码不能与当前密码相同。", "The new password must differ from the current one."},

	"level.city":      {"市", "City"},
	"level.district":  {"区", "District"},
	"level.street":    {"街道", "Street"},
	"level.community": {"社区", "Community"},

	"field.username":     {"用户名", "Username"},
	"field.display_name": {"姓名", "Display name"},
	"field.role":         {"角色", "Role"},
	"field.node":         {"所属组织", "Org unit"},
	"field.locked_until": {"锁定至", "Locked until"},
	"field.ip":           {"IP", "IP"},
	"field.reason":       {"原因", "Reason"},

	"aact.account.create":           {"创建账号", "Account created"},
	"aact.account.set_role":         {"调整角色", "Role changed"},
	"aact.notice.create":            {"发布", "Published"},
	"aact.notice.withdraw":          {"撤回", "Withdrawn"},
	"aact.account.set_display_name": {"修改姓名", "Display name changed"},
	"aact.account.set_password":     {"设置密码", "Password set"},
	"aact.account.lock":             {"锁定", "Locked"},
	"aact.account.unlock":           {"解除锁定", "Unlocked"},
	"aact.login.success":            {"登录", "Logged in"},
	"aact.login.failure":            {"登录失败", "Failed login"},
	"aact.logout":                   {"退出", "Logged out"},
	"aact.password.change_failure":  {"修改密码失败", "Failed password change"},
	"aact.session.renew":            {"更新登录", "Session renewed"},

	"areason.wrong password":         {"密码错误", "wrong password"},
	"areason.wrong current password": {"当前密码错误", "wrong current password"},
	"areason.locked":                 {"账号已锁定", "account locked"},
	"areason.unknown user":           {"用户不存在", "unknown user"},
	"areason.password changed":       {"修改密码", "password changed"},

	"actor.system":      {"系统（自动）", "System (automatic)"},
	"actor.cli":         {"命令行工具", "Command-line tool"},
	"actor.admin-token": {"管理接口", "Admin API"},
}

// managerRoles are the roles that manage accounts: those CanManage lets
// manage some account.
var managerRoles = []accounts.Role{accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin}

// registerAccounts adds the account pages.
func (c *Console) registerAccounts(m Mux) {
	c.page(m, "GET /accounts", c.accountsPage, managerRoles...)
	c.page(m, "POST /accounts", c.createAccount, managerRoles...)
	c.page(m, "GET /accounts/{id}", c.accountPage, managerRoles...)
	c.page(m, "POST /accounts/{id}/role", c.accountChange(c.setAccountRole), managerRoles...)
	c.page(m, "POST /accounts/{id}/name", c.accountChange(c.setAccountName), managerRoles...)
	c.page(m, "POST /accounts/{id}/password", c.accountChange(c.resetAccountPassword), managerRoles...)
	c.page(m, "POST /accounts/{id}/lock", c.accountChange(c.lockAccount), managerRoles...)
	c.page(m, "POST /accounts/{id}/unlock", c.accountChange(c.unlockAccount), managerRoles...)
	c.page(m, "POST /accounts/{id}/2fa/reset", c.accountChange(c.resetTwoFactor), managerRoles...)
	c.page(m, "GET /me/password", c.myPasswordPage)
	c.page(m, "POST /me/password", c.changeMyPassword)
}

// accountRow is an account as the pages show it.
type accountRow struct {
	accounts.Account
	Locked      bool
	LockedUntil time.Time
}

func (c *Console) accountRow(a accounts.Account) accountRow {
	row := accountRow{Account: a}
	if t, err := time.Parse(time.RFC3339, a.LockedUntil); err == nil && t.After(c.cfg.Now()) {
		row.Locked, row.LockedUntil = true, t
	}
	return row
}

// nodeOption is an org node offered in a form.
type nodeOption struct {
	ID, Name string
	Level    protocol.Level
	Indent   string // full-width spaces, one per level below the actor's node
}

// nodeOptions are the nodes an account in actor's scope may hold.
func (c *Console) nodeOptions(actor accounts.Account) []nodeOption {
	var out []nodeOption
	top := c.cfg.Tree.Node(actor.Node)
	for _, n := range c.cfg.Accounts.ScopeNodes(actor) {
		d := 0
		for p := n; p != nil && p != top; p = p.Parent() {
			d++
		}
		out = append(out, nodeOption{ID: n.ID, Name: n.Name, Level: n.Level, Indent: strings.Repeat("　", d)})
	}
	return out
}

// accountForm is what the create form had, to fill it in again.
type accountForm struct {
	Username, DisplayName, Role, Node string
}

// accountsData is the data of the account list.
type accountsData struct {
	Accounts []accountRow
	Roles    []string
	Nodes    []nodeOption
	Form     accountForm
	Error    string
	Done     string
}

// doneOf is the notice the done query parameter asks for, if known.
func doneOf(r *http.Request) string {
	if d := r.URL.Query().Get("done"); slices.Contains(accountDone, d) {
		return d
	}
	return ""
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request) {
	c.showAccounts(w, r, http.StatusOK, accountForm{}, "")
}

// showAccounts renders the account list with the create form, filled in
// with form and showing problem when they are set.
func (c *Console) showAccounts(w http.ResponseWriter, r *http.Request, code int, form accountForm, problem string) {
	a, _ := accounts.CurrentAccount(r.Context())
	list, err := c.cfg.Accounts.Manageable(r.Context(), a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := accountsData{Roles: strs(c.cfg.Accounts.GrantableRoles(a)), Nodes: c.nodeOptions(a), Form: form, Error: problem, Done: doneOf(r)}
	for _, acct := range list {
		d.Accounts = append(d.Accounts, c.accountRow(acct))
	}
	c.render(w, r, code, "accounts", T(langOf(r), "accounts"), d)
}

// formValues reads the fields of a parsed form, each at most its runes.
func formValues(r *http.Request, limits map[string]int) (map[string]string, error) {
	vals := map[string]string{}
	for k, max := range limits {
		v, err := formValue(r, k, max)
		if err != nil {
			return nil, err
		}
		vals[k] = v
	}
	return vals, nil
}

// rawPassword returns a password field as typed (not trimmed: spaces
// may be part of a password), at most MaxPasswordLength bytes.
func rawPassword(r *http.Request, k string) (string, error) {
	vs := r.PostForm[k]
	switch {
	case len(vs) > 1:
		return "", fmt.Errorf("%w: %s given twice", errInvalid, k)
	case len(vs) == 0:
		return "", nil
	case len(vs[0]) > accounts.MaxPasswordLength:
		return "", fmt.Errorf("%w: %s longer than %d bytes", errInvalid, k, accounts.MaxPasswordLength)
	}
	return vs[0], nil
}

// problem is a form's input an account page refuses, with the message
// key (and detail) to show and the status code.
type problem struct {
	code   int
	key    string
	detail string
}

func (p *problem) Error() string { return p.key + p.detail }

func refuse(code int, key string) *problem { return &problem{code: code, key: key} }

// message is the problem's text in lang.
func (p *problem) message(lang Lang) string {
	if p.key == "acct.err.level" {
		return T(lang, p.key) + label(lang, "level", p.detail)
	}
	return T(lang, p.key) + p.detail
}

// accountProblem turns a refusal of accounts.Service into a problem shown
// on the form; other errors (missing accounts, failures) are nil.
func accountProblem(err error) *problem {
	var p *problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, accounts.ErrWeakPassword):
		return refuse(http.StatusBadRequest, "acct.err.weak")
	case errors.Is(err, store.ErrUsernameTaken):
		return refuse(http.StatusConflict, "acct.err.taken")
	case errors.Is(err, accounts.ErrForbidden):
		return refuse(http.StatusForbidden, "acct.err.forbidden")
	case errors.Is(err, accounts.ErrInvalid), errors.Is(err, errInvalid):
		return &problem{code: http.StatusBadRequest, key: "err.invalid", detail: err.Error()}
	}
	return nil
}

// newPassword returns the password a form sets: typed twice in password
// and password2, or, both empty, generated (generated is true).
func newPassword(r *http.Request) (pw string, generated bool, err error) {
	pw, err = rawPassword(r, "password")
	if err != nil {
		return "", false, err
	}
	pw2, err := rawPassword(r, "password2")
	if err != nil {
		return "", false, err
	}
	switch {
	case pw == "" && pw2 == "":
		return accounts.GeneratePassword(), true, nil
	case pw != pw2:
		return "", false, refuse(http.StatusBadRequest, "acct.err.mismatch")
	}
	return pw, false, nil
}

// checkRoleNode checks a role and node picked in a form, for a message
// clearer than the service's; the service checks again.
func (c *Console) checkRoleNode(role accounts.Role, node string) error {
	n := c.cfg.Tree.Node(node)
	if !role.Valid() || n == nil || n.Level == protocol.LevelKiosk {
		return refuse(http.StatusBadRequest, "acct.err.role")
	}
	if want, ok := role.Level(); ok && n.Level != want {
		return &problem{code: http.StatusBadRequest, key: "acct.err.level", detail: string(want)}
	}
	return nil
}

// secretData is the data of the page showing a generated password once.
type secretData struct {
	Account  accountRow
	Password string
}

func (c *Console) createAccount(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	actor, _ := accounts.CurrentAccount(r.Context())
	vals, err := formValues(r, map[string]int{"username": 64, "display_name": 64, "role": 32, "node": 64})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	form := accountForm{Username: vals["username"], DisplayName: vals["display_name"], Role: vals["role"], Node: vals["node"]}
	role := accounts.Role(form.Role)
	var (
		pw        string
		generated bool
		a         accounts.Account
	)
	switch {
	case !accounts.ValidUsername(form.Username):
		err = refuse(http.StatusBadRequest, "acct.err.username")
	case len([]rune(form.DisplayName)) > 30:
		err = refuse(http.StatusBadRequest, "acct.err.display")
	default:
		err = c.checkRoleNode(role, form.Node)
	}
	if err == nil {
		pw, generated, err = newPassword(r)
	}
	if err == nil {
		a, err = c.cfg.Accounts.CreateAccountAs(r.Context(), actor, accounts.NewAccount{Username: form.Username,
			DisplayName: form.DisplayName, Role: role, Node: form.Node, Password: pw})
	}
	if p := accountProblem(err); p != nil {
		c.showAccounts(w, r, p.code, form, p.message(langOf(r)))
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("account created", "by", actor.ID, "id", a.ID, "username", a.Username, "role", a.Role, "node", a.Node)
	if generated {
		c.render(w, r, http.StatusOK, "account_secret", T(langOf(r), "acct.secret"), secretData{c.accountRow(a), pw})
		return
	}
	http.Redirect(w, r, "/accounts/"+a.ID+"?done=acct.created", http.StatusSeeOther)
}

// historyRow is one audit entry as the account page shows it.
type historyRow struct {
	At     time.Time
	Actor  string
	Action string
	Fields []accounts.FieldChange
}

// accountData is the data of one account's page.
type accountData struct {
	Account   accountRow
	TwoFactor accounts.TwoFactorStatus
	Roles     []string
	Nodes     []nodeOption
	History   []historyRow
	Today     string // the earliest date a lock may run through
	Error     string
	Done      string
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request) {
	actor, _ := accounts.CurrentAccount(r.Context())
	a, err := c.cfg.Accounts.ManagedAccount(r.Context(), actor, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, notFound(err))
		return
	}
	c.showAccount(w, r, http.StatusOK, a, "")
}

// notFound reports an account outside the actor's reach as the console's
// not found.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %v", errNotFound, err)
	}
	return err
}

// showAccount renders an account's page, showing problem when set.
func (c *Console) showAccount(w http.ResponseWriter, r *http.Request, code int, a accounts.Account, problem string) {
	actor, _ := accounts.CurrentAccount(r.Context())
	lang := langOf(r)
	changes, err := c.cfg.Accounts.History(r.Context(), a.ID, historyLimit)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names, err := c.accountNames(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tf, err := c.cfg.Accounts.TwoFactor(r.Context(), a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := accountData{Account: c.accountRow(a), TwoFactor: tf, Roles: strs(c.cfg.Accounts.GrantableRoles(actor)), Nodes: c.nodeOptions(actor),
		Today: c.cfg.Now().In(shanghai).Format(time.DateOnly), Error: problem, Done: doneOf(r)}
	for _, ch := range changes {
		row := historyRow{At: ch.At, Actor: actorName(lang, names, ch.Actor), Action: label(lang, "aact", ch.Action)}
		for _, f := range ch.Fields {
			row.Fields = append(row.Fields, accounts.FieldChange{Field: label(lang, "field", f.Field),
				Before: c.fieldValue(lang, f.Field, f.Before), After: c.fieldValue(lang, f.Field, f.After)})
		}
		d.History = append(d.History, row)
	}
	title := a.Username
	if a.DisplayName != "" {
		title = a.DisplayName + " (" + a.Username + ")"
	}
	c.render(w, r, code, "account", title, d)
}

// accountNames maps "account:<id>" to the account's name, for the audit
// trail's actors.
func (c *Console) accountNames(r *http.Request) (map[string]string, error) {
	rs, err := c.cfg.Store.Accounts(r.Context())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rs))
	for _, a := range rs {
		name := a.Username
		if a.DisplayName != "" {
			name = a.DisplayName + " (" + a.Username + ")"
		}
		out["account:"+a.ID] = name
	}
	return out, nil
}

// actorName is who did a change, as the audit trail shows it.
func actorName(lang Lang, names map[string]string, actor string) string {
	if n, ok := names[actor]; ok {
		return n
	}
	return label(lang, "actor", actor)
}

// fieldValue is an audited field's value as the audit trail shows it.
func (c *Console) fieldValue(lang Lang, field, v string) string {
	if v == "" {
		return ""
	}
	switch field {
	case "role":
		return label(lang, "role", v)
	case "node":
		return c.nodeName(v)
	case "reason":
		return label(lang, "areason", v)
	case "two_factor", "second_factor":
		return label(lang, "tfv", v)
	case "locked_until":
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return fmtTime(t)
		}
	}
	return v
}

// accountChange is a change of one account: it parses the form, finds
// the account (404 outside the actor's reach) and runs do, which returns
// the done notice to redirect with, or a generated password to show once.
func (c *Console) accountChange(do func(r *http.Request, actor, a accounts.Account) (done, secret string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r); err != nil {
			c.fail(w, r, err)
			return
		}
		actor, _ := accounts.CurrentAccount(r.Context())
		a, err := c.cfg.Accounts.ManagedAccount(r.Context(), actor, r.PathValue("id"))
		if err != nil {
			c.fail(w, r, notFound(err))
			return
		}
		done, secret, err := do(r, actor, a)
		if p := accountProblem(err); p != nil {
			c.showAccount(w, r, p.code, a, p.message(langOf(r)))
			return
		}
		if err != nil {
			c.fail(w, r, notFound(err))
			return
		}
		c.log.Info("account changed", "by", actor.ID, "id", a.ID, "change", done)
		if secret != "" {
			a, err := c.cfg.Accounts.Account(r.Context(), a.ID)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			c.render(w, r, http.StatusOK, "account_secret", T(langOf(r), "acct.secret"), secretData{c.accountRow(a), secret})
			return
		}
		http.Redirect(w, r, "/accounts/"+a.ID+"?done="+done, http.StatusSeeOther)
	}
}

func (c *Console) setAccountName(r *http.Request, actor, a accounts.Account) (string, string, error) {
	name, err := formValue(r, "display_name", 400)
	if err != nil {
		return "", "", err
	}
	if len([]rune(strings.TrimSpace(name))) > 30 {
		return "", "", refuse(http.StatusBadRequest, "acct.err.display")
	}
	if _, err := c.cfg.Accounts.SetDisplayNameAs(r.Context(), actor, a.ID, name); err != nil {
		return "", "", err
	}
	return "acct.renamed", "", nil
}

func (c *Console) setAccountRole(r *http.Request, actor, a accounts.Account) (string, string, error) {
	vals, err := formValues(r, map[string]int{"role": 32, "node": 64})
	if err != nil {
		return "", "", err
	}
	role := accounts.Role(vals["role"])
	if err := c.checkRoleNode(role, vals["node"]); err != nil {
		return "", "", err
	}
	if _, err := c.cfg.Accounts.SetRoleAs(r.Context(), actor, a.ID, role, vals["node"]); err != nil {
		return "", "", err
	}
	return "acct.role_set", "", nil
}

func (c *Console) resetAccountPassword(r *http.Request, actor, a accounts.Account) (string, string, error) {
	pw, generated, err := newPassword(r)
	if err != nil {
		return "", "", err
	}
	if _, err := c.cfg.Accounts.SetPasswordAs(r.Context(), actor, a.ID, pw); err != nil {
		return "", "", err
	}
	if generated {
		return "acct.password_set", pw, nil
	}
	return "acct.password_set", "", nil
}

func (c *Console) lockAccount(r *http.Request, actor, a accounts.Account) (string, string, error) {
	v, err := formValue(r, "until", 10)
	if err != nil {
		return "", "", err
	}
	day, err := time.ParseInLocation(time.DateOnly, v, shanghai)
	now := c.cfg.Now()
	// The lock runs through the day picked: until the next midnight.
	until := day.AddDate(0, 0, 1)
	if err != nil || !until.After(now) || until.Sub(now) > maxLock {
		return "", "", refuse(http.StatusBadRequest, "acct.err.date")
	}
	if _, err := c.cfg.Accounts.LockAs(r.Context(), actor, a.ID, until); err != nil {
		return "", "", err
	}
	return "acct.locked", "", nil
}

func (c *Console) unlockAccount(r *http.Request, actor, a accounts.Account) (string, string, error) {
	if _, err := c.cfg.Accounts.UnlockAs(r.Context(), actor, a.ID); err != nil {
		return "", "", err
	}
	return "acct.unlocked", "", nil
}

// resetTwoFactor switches off the account's two-step verification (a lost
// phone); its sessions end and the person may enrol again.
func (c *Console) resetTwoFactor(r *http.Request, actor, a accounts.Account) (string, string, error) {
	if _, err := c.cfg.Accounts.ResetTwoFactorAs(r.Context(), actor, a.ID); err != nil {
		return "", "", err
	}
	return "acct.2fa_reset", "", nil
}

// myPasswordData is the data of the own-password page.
type myPasswordData struct {
	Error string
	Done  string
}

func (c *Console) myPasswordPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "me_password", T(langOf(r), "me.password"), myPasswordData{Done: doneOf(r)})
}

// changeMyPassword changes the account's own password. Its other sessions
// end; this one is replaced by a new session whose cookie is set here.
func (c *Console) changeMyPassword(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	a, _ := accounts.CurrentAccount(r.Context())
	lang := langOf(r)
	current, err := rawPassword(r, "current")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next, err := rawPassword(r, "password")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next2, err := rawPassword(r, "password2")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var token string
	switch {
	case next != next2:
		err = refuse(http.StatusBadRequest, "acct.err.mismatch")
	case next == current:
		err = refuse(http.StatusBadRequest, "me.err.same")
	default:
		token, _, err = c.cfg.Accounts.ChangePassword(r.Context(), a.ID, current, next, clientIP(r))
		if errors.Is(err, accounts.ErrBadCredentials) {
			c.log.Warn("wrong current password", "account", a.ID, "ip", clientIP(r))
			err = refuse(http.StatusBadRequest, "me.err.current")
		}
	}
	if p := accountProblem(err); p != nil {
		c.render(w, r, p.code, "me_password", T(lang, "me.password"), myPasswordData{Error: p.message(lang)})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("password changed", "account", a.ID)
	http.SetCookie(w, c.cfg.Accounts.SessionCookie(token))
	http.Redirect(w, r, "/me/password?done=me.changed", http.StatusSeeOther)
}

// clientIP is the request's peer address, for the audit log.
func clientIP(r *http.Request) string {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return ip
	}
	return r.RemoteAddr
}
