package accounts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"
)

// CookieName is the session cookie's name.
const CookieName = "shequ_session"

// PendingCookieName is the name of the cookie that carries a pending-login
// token between the password and the code (path /login, strict same-site).
const PendingCookieName = "shequ_login2fa"

// MaxLoginForm bounds the body of POST /login.
const MaxLoginForm = 4 << 10

// CSRFHeader and CSRFField carry the CSRF token of a state-changing request.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// maxCSRFForm bounds a url-encoded body read to find the csrf field.
const maxCSRFForm = 1 << 20

// LoginForm is the decoded body of POST /login.
type LoginForm struct {
	Username string
	Password string
}

// ParseLoginForm decodes a url-encoded login form: exactly one username and
// one password, of bounded length and valid UTF-8.
func ParseLoginForm(body []byte) (LoginForm, error) {
	if len(body) > MaxLoginForm {
		return LoginForm{}, fmt.Errorf("%w: login form is %d bytes, limit %d", ErrInvalid, len(body), MaxLoginForm)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return LoginForm{}, fmt.Errorf("%w: login form: %v", ErrInvalid, err)
	}
	one := func(k string, max int) (string, error) {
		vs := v[k]
		if len(vs) != 1 || vs[0] == "" || len(vs[0]) > max || !utf8.ValidString(vs[0]) {
			return "", fmt.Errorf("%w: login form: %s must be given once, 1-%d bytes of UTF-8", ErrInvalid, k, max)
		}
		return vs[0], nil
	}
	var f LoginForm
	if f.Username, err = one("username", 64); err != nil {
		return LoginForm{}, err
	}
	if f.Password, err = one("password", MaxPasswordLength); err != nil {
		return LoginForm{}, err
	}
	return f, nil
}

func clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// sameOrigin rejects a cross-site form post: when the browser sends Origin it
// must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (s *Service) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// readLoginPost checks what both login steps need of a request (POST, a
// url-encoded form, the same origin) and reads its body, at most
// MaxLoginForm bytes; noStore marks the reply uncacheable before the body
// is read. When it returns false it has answered the request (badType and
// tooLarge are the messages of those refusals).
func readLoginPost(w http.ResponseWriter, r *http.Request, badType, tooLarge string, noStore bool) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil, false
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/x-www-form-urlencoded" {
		http.Error(w, badType, http.StatusUnsupportedMediaType)
		return nil, false
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return nil, false
	}
	if noStore {
		w.Header().Set("Cache-Control", "no-store")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLoginForm))
	if err != nil {
		http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return body, true
}

// LoginHandler serves POST /login (form fields username and password). On
// success it sets the session cookie and redirects (303) to HomePath; on
// wrong credentials or a locked account it redirects to LoginPath?failed=1;
// too many attempts from the client's IP get 429.
func (s *Service) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readLoginPost(w, r, "login expects a url-encoded form", "login form too large", false)
		if !ok {
			return
		}
		f, err := ParseLoginForm(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := s.BeginLogin(r.Context(), f.Username, f.Password, clientIP(r))
		switch {
		case errors.Is(err, ErrRateLimited):
			w.Header().Set("Retry-After", strconv.Itoa(60))
			http.Error(w, "登录尝试过多，请稍后再试 / too many login attempts", http.StatusTooManyRequests)
			return
		case errors.Is(err, ErrBadCredentials):
			http.Redirect(w, r, s.cfg.LoginPath+"?failed=1", http.StatusSeeOther)
			return
		case err != nil:
			s.log.Error("login", "err", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		a := res.Account
		if res.Pending != "" {
			s.log.Info("login waits for a code", "account", a.ID, "ip", clientIP(r))
			http.SetCookie(w, s.pendingCookie(res.Pending, int(s.cfg.PendingTTL.Seconds())))
			http.Redirect(w, r, s.cfg.SecondFactorPath, http.StatusSeeOther)
			return
		}
		s.log.Info("login", "account", a.ID, "username", a.Username, "ip", clientIP(r))
		http.SetCookie(w, s.cookie(res.Session, int(s.cfg.AbsoluteTimeout.Seconds())))
		to := s.cfg.HomePath
		if res.MustEnrol {
			to = s.cfg.EnrolPath
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

func (s *Service) pendingCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: PendingCookieName, Value: value, Path: s.cfg.LoginPath, MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// ParseCodeForm decodes a url-encoded form with exactly one code field of
// 1-64 bytes of UTF-8 (a verification or recovery code), at most
// MaxLoginForm bytes.
func ParseCodeForm(body []byte) (string, error) {
	if len(body) > MaxLoginForm {
		return "", fmt.Errorf("%w: code form is %d bytes, limit %d", ErrInvalid, len(body), MaxLoginForm)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return "", fmt.Errorf("%w: code form: %v", ErrInvalid, err)
	}
	vs := v["code"]
	if len(vs) != 1 || vs[0] == "" || len(vs[0]) > 64 || !utf8.ValidString(vs[0]) {
		return "", fmt.Errorf("%w: code form: code must be given once, 1-64 bytes of UTF-8", ErrInvalid)
	}
	return vs[0], nil
}

// SecondFactorHandler serves POST SecondFactorPath (form field code), the
// second step of a login with two-step verification: the pending-login
// token comes from its cookie. A right code sets the session cookie,
// clears the pending one and redirects (303) to HomePath; a wrong code
// redirects to SecondFactorPath?failed=1; a missing, forged or expired
// pending login to LoginPath?expired=1, and a locked account to
// LoginPath?failed=1; too many attempts from the client's IP get 429.
func (s *Service) SecondFactorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readLoginPost(w, r, "the code form must be url-encoded", "code form too large", true)
		if !ok {
			return
		}
		code, err := ParseCodeForm(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c, err := r.Cookie(PendingCookieName)
		if err != nil {
			http.Redirect(w, r, s.cfg.LoginPath+"?expired=1", http.StatusSeeOther)
			return
		}
		token, a, err := s.CompleteLogin(r.Context(), c.Value, code, clientIP(r))
		switch {
		case errors.Is(err, ErrRateLimited):
			w.Header().Set("Retry-After", strconv.Itoa(60))
			http.Error(w, "登录尝试过多，请稍后再试 / too many login attempts", http.StatusTooManyRequests)
			return
		case errors.Is(err, ErrPendingLogin):
			http.SetCookie(w, s.pendingCookie("", -1))
			http.Redirect(w, r, s.cfg.LoginPath+"?expired=1", http.StatusSeeOther)
			return
		case errors.Is(err, ErrBadCredentials):
			http.SetCookie(w, s.pendingCookie("", -1))
			http.Redirect(w, r, s.cfg.LoginPath+"?failed=1", http.StatusSeeOther)
			return
		case errors.Is(err, ErrBadCode):
			s.log.Warn("wrong verification code", "ip", clientIP(r))
			http.Redirect(w, r, s.cfg.SecondFactorPath+"?failed=1", http.StatusSeeOther)
			return
		case err != nil:
			s.log.Error("login code", "err", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		s.log.Info("login", "account", a.ID, "username", a.Username, "ip", clientIP(r), "second_factor", true)
		http.SetCookie(w, s.pendingCookie("", -1))
		http.SetCookie(w, s.cookie(token, int(s.cfg.AbsoluteTimeout.Seconds())))
		http.Redirect(w, r, s.cfg.HomePath, http.StatusSeeOther)
	})
}

// LogoutHandler serves POST /logout: it needs a session and its CSRF token,
// ends the session, clears the cookie and redirects (303) to LoginPath.
func (s *Service) LogoutHandler() http.Handler {
	return s.EnrolSession()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		sess := r.Context().Value(sessionKey{}).(session)
		if err := s.Logout(r.Context(), sess.token, sess.account); err != nil {
			s.log.Error("logout", "err", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, s.cookie("", -1))
		http.Redirect(w, r, s.cfg.LoginPath, http.StatusSeeOther)
	}))
}

type sessionKey struct{}

type session struct {
	token     string
	account   Account
	csrf      string
	mustEnrol bool
}

// CurrentAccount returns the account RequireSession put in the context.
func CurrentAccount(ctx context.Context) (Account, bool) {
	s, ok := ctx.Value(sessionKey{}).(session)
	return s.account, ok
}

// MustEnrol reports whether the context's session belongs to an account
// that must enrol in two-step verification before anything else.
func MustEnrol(ctx context.Context) bool {
	s, _ := ctx.Value(sessionKey{}).(session)
	return s.mustEnrol
}

// CSRF returns the CSRF token of the context's session, for forms to embed
// in their csrf field; empty without a session.
func CSRF(ctx context.Context) string {
	s, _ := ctx.Value(sessionKey{}).(session)
	return s.csrf
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// RequireSession returns middleware that admits only requests with a live
// session whose account has one of roles (any role when none are given),
// and, for every method but GET, HEAD and OPTIONS, the session's CSRF token
// in the X-CSRF-Token header or the csrf form field. Without a session, page
// requests (GET, HEAD) are redirected to LoginPath and others get 401; a
// wrong role or a missing or wrong CSRF token gets 403. The account is in
// the request's context (CurrentAccount).
//
// An account whose role requires two-step verification (Config.Require2FA)
// and that has none yet is admitted only by EnrolSession: here its page
// requests are redirected to EnrolPath and others get 403.
func (s *Service) RequireSession(roles ...Role) func(http.Handler) http.Handler {
	return s.requireSession(false, roles)
}

// EnrolSession is RequireSession (any role) that also admits accounts that
// must still enrol in two-step verification (MustEnrol tells them): for the
// enrolment pages and logging out.
func (s *Service) EnrolSession() func(http.Handler) http.Handler {
	return s.requireSession(true, nil)
}

func (s *Service) requireSession(enrolling bool, roles []Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Add("Vary", "Cookie")
			var token string
			if c, err := r.Cookie(CookieName); err == nil {
				token = c.Value
			}
			a, err := s.Authenticate(r.Context(), token)
			if errors.Is(err, ErrNoSession) {
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					http.Redirect(w, r, s.cfg.LoginPath, http.StatusSeeOther)
					return
				}
				http.Error(w, "请先登录 / login required", http.StatusUnauthorized)
				return
			}
			if err != nil {
				s.log.Error("authenticate", "err", err)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
				return
			}
			if len(roles) > 0 && !slices.Contains(roles, a.Role) {
				http.Error(w, "无权访问 / forbidden", http.StatusForbidden)
				return
			}
			must, err := s.mustEnrol(r.Context(), a)
			if err != nil {
				s.log.Error("two-step status", "err", err)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
				return
			}
			if must && !enrolling {
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					http.Redirect(w, r, s.cfg.EnrolPath, http.StatusSeeOther)
					return
				}
				http.Error(w, "请先开启两步验证 / two-step verification required", http.StatusForbidden)
				return
			}
			if !safeMethod(r.Method) && !s.CheckCSRF(token, s.csrfFrom(w, r)) {
				http.Error(w, "CSRF 校验失败 / CSRF check failed", http.StatusForbidden)
				return
			}
			ctx := context.WithValue(r.Context(), sessionKey{}, session{token: token, account: a, csrf: s.CSRFToken(token), mustEnrol: must})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// csrfFrom finds the request's CSRF token: the header, else the csrf field
// of a url-encoded or multipart form (bodies bounded).
func (s *Service) csrfFrom(w http.ResponseWriter, r *http.Request) string {
	if h := r.Header.Get(CSRFHeader); h != "" {
		return h
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	switch ct {
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(w, r.Body, maxCSRFForm)
		if err := r.ParseForm(); err != nil {
			return ""
		}
		return r.PostForm.Get(CSRFField)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxCSRFForm); err != nil {
			return ""
		}
		return r.PostFormValue(CSRFField)
	}
	return ""
}
