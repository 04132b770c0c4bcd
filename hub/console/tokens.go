package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
)

// Personal API tokens (hub/accounts apitokens.go): /me/tokens, where a
// bureau admin makes tokens for scripts that call the hub's JSON API, sees
// them listed (name, made, expires, last used, revoked) and revokes them.
// A new token is shown once, in the reply to the form that made it (never
// in a URL, never on the list afterwards), sent Cache-Control: no-store.
// Only bureau admins reach these pages: the API is not scoped by org node,
// so a token acts city-wide; other roles get 403.

// tokenPages are the token pages and their layout.
var tokenPages = map[string]string{"me_tokens": "desk"}

// tokenMessages are the token pages' messages.
var tokenMessages = htmlpage.Messages{
	"nav.tokens":       {"API 令牌", "API tokens"},
	"tok":              {"个人 API 令牌", "Personal API tokens"},
	"tok.intro":        {"供对接脚本（如 12345 热线对接）调用工作站 API 使用，代替共享的管理令牌：每次调用都记在您名下，可随时单独撤销。令牌拥有全市范围的管理权限，请像密码一样保管，不要写进代码仓库或发到聊天群。", "For scripts (such as the 12345 hotline link) that call the hub's API, instead of the shared admin token: each call is recorded under your name and each token can be revoked on its own. A token has city-wide admin rights: keep it like a password, out of code repositories and chat groups."},
	"tok.usage":        {"使用方法：HTTP 请求头 Authorization: Bearer <令牌>", "Use it in the HTTP header Authorization: Bearer <token>"},
	"tok.name":         {"名称", "Name"},
	"tok.name.help":    {"写明用途，例如“12345 对接脚本”。", "Say what it is for, e.g. \"12345 hotline script\"."},
	"tok.days":         {"有效期", "Valid for"},
	"tok.days.30":      {"30 天", "30 days"},
	"tok.days.90":      {"90 天", "90 days"},
	"tok.days.365":     {"365 天", "365 days"},
	"tok.create":       {"生成令牌", "Make a token"},
	"tok.new":          {"新令牌", "New token"},
	"tok.list":         {"我的令牌", "My tokens"},
	"tok.none":         {"还没有令牌。", "No tokens yet."},
	"tok.created":      {"创建时间", "Made"},
	"tok.expires":      {"到期时间", "Expires"},
	"tok.last_used":    {"最后使用", "Last used"},
	"tok.state":        {"状态", "State"},
	"tok.active":       {"有效", "Active"},
	"tok.expired":      {"已过期", "Expired"},
	"tok.revoked":      {"已撤销", "Revoked"},
	"tok.revoke":       {"撤销", "Revoke"},
	"tok.revoke.help":  {"撤销后立即失效，无法恢复。", "A revoked token stops working at once, for good."},
	"tok.secret":       {"您的新令牌", "Your new token"},
	"tok.secret.help":  {"令牌只显示这一次，离开本页后无法再次查看。请现在复制并妥善保存；遗失后请撤销并重新生成。", "The token is shown only this once and cannot be seen again after you leave this page. Copy it now and keep it safe; if you lose it, revoke it and make a new one."},
	"tok.done.revoked": {"令牌已撤销。", "Token revoked."},
	"tok.err.name":     {"请填写名称（不超过 100 个字符）。", "Give a name (at most 100 characters)."},
	"tok.err.days":     {"有效期只能选 30、90 或 365 天。", "The token lasts 30, 90 or 365 days."},

	"aact.api_token.create": {"生成 API 令牌", "API token made"},
	"aact.api_token.revoke": {"撤销 API 令牌", "API token revoked"},
	"field.token_id":        {"令牌编号", "Token id"},
	"field.token_name":      {"令牌名称", "Token name"},
	"field.expires_at":      {"到期时间", "Expires"},
	"field.revoked_at":      {"撤销时间", "Revoked"},
}

// registerTokens adds the token pages, for bureau admins only.
func (c *Console) registerTokens(m Mux) {
	c.page(m, "GET /me/tokens", c.tokensPage, accounts.RoleBureauAdmin)
	c.page(m, "POST /me/tokens", c.createToken, accounts.RoleBureauAdmin)
	c.page(m, "POST /me/tokens/{id}/revoke", c.revokeToken, accounts.RoleBureauAdmin)
}

// tokenRow is a token as the list shows it.
type tokenRow struct {
	accounts.APIToken
	State string // the message key of its state
}

// tokenForm is what the create form had, to fill it in again.
type tokenForm struct {
	Name string
	Days int
}

// tokensData is the data of /me/tokens.
type tokensData struct {
	Tokens []tokenRow
	Days   []int
	Form   tokenForm
	Token  string // a token just made, shown this once
	New    accounts.APIToken
	Error  string
	Done   string
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request) {
	d := tokensData{Form: tokenForm{Days: accounts.DefaultAPITokenDays}}
	if r.URL.Query().Get("done") == "tok.done.revoked" {
		d.Done = "tok.done.revoked"
	}
	c.showTokens(w, r, http.StatusOK, d)
}

// showTokens renders /me/tokens with the account's tokens.
func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, code int, d tokensData) {
	a, _ := accounts.CurrentAccount(r.Context())
	list, err := c.cfg.Accounts.APITokens(r.Context(), a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.cfg.Now()
	for _, t := range list {
		row := tokenRow{APIToken: t, State: "tok.active"}
		switch {
		case t.Revoked():
			row.State = "tok.revoked"
		case t.Expired(now):
			row.State = "tok.expired"
		}
		d.Tokens = append(d.Tokens, row)
	}
	d.Days = accounts.APITokenDays
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, code, "me_tokens", T(langOf(r), "tok"), d)
}

// createToken makes a token and shows it once on the page.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	a, _ := accounts.CurrentAccount(r.Context())
	lang := langOf(r)
	name, err := formValue(r, "name", 4*accounts.MaxAPITokenName)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	daysText, err := formValue(r, "days", 8)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	form := tokenForm{Name: name, Days: accounts.DefaultAPITokenDays}
	days, err := strconv.Atoi(daysText)
	if err != nil || !slices.Contains(accounts.APITokenDays, days) {
		c.showTokens(w, r, http.StatusBadRequest, tokensData{Form: form, Error: T(lang, "tok.err.days")})
		return
	}
	form.Days = days
	if _, err := accounts.CheckAPITokenName(name); err != nil {
		c.showTokens(w, r, http.StatusBadRequest, tokensData{Form: form, Error: T(lang, "tok.err.name")})
		return
	}
	token, t, err := c.cfg.Accounts.CreateAPIToken(r.Context(), a, name, days)
	if errors.Is(err, accounts.ErrForbidden) {
		err = errForbidden
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("api token made", "account", a.ID, "token_id", t.ID)
	c.showTokens(w, r, http.StatusOK, tokensData{Form: tokenForm{Days: accounts.DefaultAPITokenDays}, Token: token, New: t})
}

// revokeToken revokes one of the account's tokens; another's is 404.
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	a, _ := accounts.CurrentAccount(r.Context())
	if _, err := c.cfg.Accounts.RevokeAPIToken(r.Context(), a, r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/me/tokens?done=tok.done.revoked", http.StatusSeeOther)
}
