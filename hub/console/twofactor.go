package console

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"

	"github.com/skip2/go-qrcode"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
)

// Two-step verification pages (hub/accounts twofactor.go): /me/2fa, where
// an account enrols (a QR code of a fresh secret, the secret in groups of
// four, a form for a current code) and sees its ten recovery codes once,
// or switches it off again; and /login/2fa, the login's second step. The
// QR code is a PNG made here and inlined as a data: URL (the console's
// Content-Security-Policy allows img-src data:), so the secret never has a
// URL of its own; every page behind a session is sent Cache-Control:
// no-store. An account that must enrol (Config.Require2FA) reaches only
// these pages and logging out until it has.

// twoFactorPages are the two-step pages and their layout.
var twoFactorPages = map[string]string{"me_2fa": "desk", "me_2fa_codes": "desk", "login_2fa": "desk"}

// twoFactorMessages are the two-step pages' messages.
var twoFactorMessages = htmlpage.Messages{
	"tf":                  {"两步验证", "Two-step verification"},
	"tf.link":             {"两步验证设置", "Two-step verification settings"},
	"tf.on":               {"已开启", "On"},
	"tf.off":              {"未开启", "Off"},
	"tf.since":            {"开启时间", "On since"},
	"tf.recovery_left":    {"剩余恢复码", "Recovery codes left"},
	"tf.intro":            {"开启后，登录时除密码外还需输入手机验证器应用（如微信小程序“腾讯身份验证器”、Google Authenticator、Microsoft Authenticator）生成的 6 位验证码。", "Once on, logging in needs, besides the password, the 6-digit code of an authenticator app on your phone (Tencent Authenticator, Google Authenticator, Microsoft Authenticator and the like)."},
	"tf.required":         {"您的角色须开启两步验证，开启后才能使用工作台。", "Your role requires two-step verification: turn it on to use the console."},
	"tf.step1":            {"1. 用验证器应用扫描二维码", "1. Scan the QR code with the authenticator app"},
	"tf.manual":           {"无法扫码时，可在应用中手动输入密钥：", "If you cannot scan it, type this key into the app:"},
	"tf.qr":               {"两步验证二维码", "Two-step verification QR code"},
	"tf.step2":            {"2. 输入应用显示的验证码以确认", "2. Confirm with the code the app shows"},
	"tf.code":             {"验证码", "Verification code"},
	"tf.confirm":          {"确认开启", "Turn it on"},
	"tf.secret.help":      {"密钥只在本页显示；刷新页面会生成新的密钥，之前扫描的将失效。", "The key is shown only on this page; reloading it makes a new key and the one scanned before stops working."},
	"tf.codes":            {"恢复码", "Recovery codes"},
	"tf.codes.help":       {"两步验证已开启。以下 10 个恢复码只显示这一次，每个只能使用一次：手机丢失时可代替验证码登录。请抄写或打印后妥善保管。", "Two-step verification is on. These 10 recovery codes are shown only this once and each works once: use one instead of a code if you lose your phone. Write them down or print them and keep them safe."},
	"tf.codes.done":       {"我已保存恢复码", "I have saved the codes"},
	"tf.disable":          {"关闭两步验证", "Turn two-step verification off"},
	"tf.disable.help":     {"请输入当前验证码（或恢复码），或者您的密码。", "Give a current code (or a recovery code), or your password."},
	"tf.disabled":         {"两步验证已关闭。", "Two-step verification is off."},
	"tf.err.code":         {"验证码不正确或已使用，请输入应用当前显示的验证码。", "The code is wrong or was used already; give the code the app shows now."},
	"tf.err.disable":      {"验证码或密码不正确。连续输错多次将锁定账号。", "The code or password is wrong. Repeated mistakes lock the account."},
	"tf.err.state":        {"两步验证的状态已变化，请重新操作。", "Two-step verification changed meanwhile; please start again."},
	"tf.login":            {"输入验证码", "Enter the verification code"},
	"tf.login.help":       {"请打开手机验证器应用，输入显示的 6 位验证码。手机丢失时可输入一个恢复码。", "Open the authenticator app on your phone and enter the 6-digit code. If you lost your phone, enter a recovery code."},
	"tf.login.code":       {"验证码或恢复码", "Verification or recovery code"},
	"tf.login.failed":     {"验证码不正确或已使用。连续输错多次将锁定账号。", "The code is wrong or was used already. Repeated mistakes lock the account."},
	"tf.login.submit":     {"验证", "Verify"},
	"tf.login.restart":    {"重新登录", "Start again"},
	"login.expired":       {"登录已超时，请重新输入用户名和密码。", "The login timed out; enter your username and password again."},
	"acct.2fa":            {"两步验证", "Two-step verification"},
	"acct.2fa.reset":      {"重置两步验证", "Reset two-step verification"},
	"acct.2fa.help":       {"用于手机丢失等情况：重置后该账号的两步验证关闭、恢复码作废、登录全部退出，本人可重新开启。", "For a lost phone: the account's two-step verification goes off, its recovery codes stop working and its sessions end; the person can turn it on again."},
	"acct.2fa_reset":      {"两步验证已重置。", "Two-step verification reset."},
	"field.two_factor":    {"两步验证", "Two-step verification"},
	"field.second_factor": {"第二步验证", "Second step"},
	"tfv.on":              {"开启", "on"},
	"tfv.off":             {"关闭", "off"},
	"tfv.totp":            {"验证码", "verification code"},
	"tfv.recovery code":   {"恢复码", "recovery code"},

	"aact.totp.enable":          {"开启两步验证", "Two-step verification on"},
	"aact.totp.disable":         {"关闭两步验证", "Two-step verification off"},
	"aact.totp.disable_failure": {"关闭两步验证失败", "Failed to turn two-step verification off"},
	"aact.account.reset_2fa":    {"重置两步验证", "Two-step verification reset"},
	"aact.login.2fa.challenge":  {"密码正确，等待验证码", "Password right, awaiting code"},
	"aact.login.2fa.failure":    {"验证码错误", "Wrong verification code"},

	"areason.wrong code":          {"验证码错误", "wrong code"},
	"areason.replayed code":       {"验证码已使用", "code used already"},
	"areason.wrong recovery code": {"恢复码错误或已使用", "wrong or used recovery code"},
	"areason.malformed code":      {"验证码格式错误", "malformed code"},
	"areason.no code or password": {"未提供验证码或密码", "no code or password"},
}

// registerTwoFactor adds the two-step pages.
func (c *Console) registerTwoFactor(m Mux) {
	acc := c.cfg.Accounts
	enrol := func(f http.HandlerFunc) http.Handler { return secure(acc.EnrolSession()(f)) }
	m.Handle("GET /login/2fa", secure(http.HandlerFunc(c.loginCodePage)))
	m.Handle("POST /login/2fa", secure(acc.SecondFactorHandler()))
	m.Handle("GET /me/2fa", enrol(c.twoFactorPage))
	m.Handle("POST /me/2fa", enrol(c.enableTwoFactor))
	m.Handle("POST /me/2fa/disable", enrol(c.disableTwoFactor))
}

// loginCodeData is the data of the login's second step.
type loginCodeData struct{ Failed bool }

func (c *Console) loginCodePage(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(accounts.PendingCookieName); err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, http.StatusOK, "login_2fa", T(langOf(r), "tf.login"), loginCodeData{Failed: r.URL.Query().Get("failed") == "1"})
}

// twoFactorData is the data of /me/2fa.
type twoFactorData struct {
	Status   accounts.TwoFactorStatus
	Required bool // the account must enrol before anything else
	QR       template.URL
	Secret   string // in groups of four
	Error    string
	Done     string
}

// twoFactorPage shows the account's two-step status, and when it is off a
// fresh secret to enrol with.
func (c *Console) twoFactorPage(w http.ResponseWriter, r *http.Request) {
	d := twoFactorData{}
	if r.URL.Query().Get("done") == "tf.disabled" {
		d.Done = "tf.disabled"
	}
	c.showTwoFactor(w, r, http.StatusOK, true, d)
}

// showTwoFactor renders /me/2fa; when two-step verification is off it
// shows a fresh secret (fresh) or the one offered already.
func (c *Console) showTwoFactor(w http.ResponseWriter, r *http.Request, code int, fresh bool, d twoFactorData) {
	a, _ := accounts.CurrentAccount(r.Context())
	st, err := c.cfg.Accounts.TwoFactor(r.Context(), a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Status, d.Required = st, accounts.MustEnrol(r.Context())
	if !st.On {
		offer := c.cfg.Accounts.CurrentOffer
		if fresh {
			offer = c.cfg.Accounts.OfferTwoFactor
		}
		e, err := offer(r.Context(), a)
		if errors.Is(err, accounts.ErrTwoFactorOff) {
			e, err = c.cfg.Accounts.OfferTwoFactor(r.Context(), a)
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		png, err := qrcode.Encode(e.URI, qrcode.Medium, 256)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		// Built here from PNG bytes, so safe as a URL.
		d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		d.Secret = e.Grouped
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, code, "me_2fa", T(langOf(r), "tf"), d)
}

// recoveryData is the data of the page showing the recovery codes once.
type recoveryData struct{ Codes []string }

// enableTwoFactor confirms the offered secret with a current code and
// shows the recovery codes once.
func (c *Console) enableTwoFactor(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	a, _ := accounts.CurrentAccount(r.Context())
	lang := langOf(r)
	code, err := formValue(r, "code", 16)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	codes, err := c.cfg.Accounts.EnableTwoFactor(r.Context(), a, code, clientIP(r))
	switch {
	case errors.Is(err, accounts.ErrBadCode):
		// The same secret again: the user has scanned it already.
		c.showTwoFactor(w, r, http.StatusBadRequest, false, twoFactorData{Error: T(lang, "tf.err.code")})
		return
	case errors.Is(err, accounts.ErrTwoFactorOn), errors.Is(err, accounts.ErrTwoFactorOff):
		c.showTwoFactor(w, r, http.StatusConflict, true, twoFactorData{Error: T(lang, "tf.err.state")})
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.log.Info("two-step verification on", "account", a.ID)
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, http.StatusOK, "me_2fa_codes", T(lang, "tf.codes"), recoveryData{Codes: codes})
}

// disableTwoFactor switches two-step verification off with a current code
// or the password.
func (c *Console) disableTwoFactor(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	a, _ := accounts.CurrentAccount(r.Context())
	lang := langOf(r)
	code, err := formValue(r, "code", 32)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pw, err := rawPassword(r, "password")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	err = c.cfg.Accounts.DisableTwoFactor(r.Context(), a, code, pw, clientIP(r))
	switch {
	case errors.Is(err, accounts.ErrBadCode), errors.Is(err, accounts.ErrBadCredentials):
		c.log.Warn("wrong proof to turn two-step verification off", "account", a.ID, "ip", clientIP(r))
		c.showTwoFactor(w, r, http.StatusBadRequest, true, twoFactorData{Error: T(lang, "tf.err.disable")})
		return
	case errors.Is(err, accounts.ErrTwoFactorOff):
		c.showTwoFactor(w, r, http.StatusConflict, true, twoFactorData{Error: T(lang, "tf.err.state")})
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.log.Info("two-step verification off", "account", a.ID)
	http.Redirect(w, r, "/me/2fa?done=tf.disabled", http.StatusSeeOther)
}
