package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/protocol"
	"github.com/shequ/shequ/protocol/glyphs"
)

// treeItem is an org-tree node in the target picker, with its depth.
type treeItem struct {
	Node  *orgtree.Node
	Depth int
}

// subtree lists the account's node and everything under it, depth first.
func (c *Console) subtree(node string) []treeItem {
	var out []treeItem
	var walk func(n *orgtree.Node, d int)
	walk = func(n *orgtree.Node, d int) {
		out = append(out, treeItem{n, d})
		for _, ch := range n.Children {
			walk(ch, d+1)
		}
	}
	if n := c.cfg.Tree.Node(node); n != nil {
		walk(n, 0)
	}
	return out
}

type noticesData struct {
	Notices    []api.Notice
	Tree       []treeItem
	Categories []string
	Priorities []string
	Now        time.Time
	Form       noticeForm // what the composer had, to fill it in again
	Error      string     // why the composer's notice was refused
}

// noticeForm is the notice composer's input as typed.
type noticeForm struct {
	Title, Body, Category, Priority, From, Until string
	Targets                                      []string
}

// visibleNotice reports whether every target of a notice lies within the
// account's scope (only then may it see delivery or withdraw it).
func visibleNotice(p accounts.Principal, n api.Notice) bool {
	for _, t := range n.Targets {
		if !p.CanSee(t.ID) {
			return false
		}
	}
	return len(n.Targets) > 0
}

func (c *Console) noticesPage(w http.ResponseWriter, r *http.Request) {
	c.showNotices(w, r, http.StatusOK, noticeForm{}, "")
}

// showNotices renders the notice list with the composer, filled in with
// form and showing problem when they are set.
func (c *Console) showNotices(w http.ResponseWriter, r *http.Request, code int, form noticeForm, problem string) {
	p, a := c.principal(r)
	all, err := c.cfg.Notices.Notices(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := noticesData{Tree: c.subtree(a.Node), Categories: strs(protocol.NoticeCategories),
		Priorities: strs(protocol.Priorities), Now: c.cfg.Now(), Form: form, Error: problem}
	for _, n := range all {
		if visibleNotice(p, n) {
			d.Notices = append(d.Notices, n)
		}
	}
	slices.SortStableFunc(d.Notices, func(a, b api.Notice) int { return b.CreatedAt.Compare(a.CreatedAt) })
	c.render(w, r, code, "notices", T(langOf(r), "notices"), d)
}

// undrawable is the form error for text with characters the kiosk fonts
// cannot draw (protocol/glyphs), naming them.
func undrawable(lang Lang, missing []rune) string {
	names := make([]string, len(missing))
	for i, r := range missing {
		names[i] = glyphs.Name(r)
	}
	return T(lang, "glyphs.missing") + strings.Join(names, " ") + T(lang, "glyphs.rephrase")
}

// answerReachesKiosk reports whether a case's answer is shown on a kiosk's
// public case board: the case came in through a kiosk (its feedback, or a
// 城管码 scanned at a kiosk) or a kiosk's case was merged into it.
func answerReachesKiosk(d cases.Detail) bool {
	if d.Case.Kiosk != "" {
		return true
	}
	for _, cp := range d.Complainants {
		if cp.Source == string(cases.SourceKiosk) {
			return true
		}
	}
	return false
}

// startsAt is when a notice starts: from, or now when from is not set.
func startsAt(from, now time.Time) time.Time {
	if from.IsZero() {
		return now
	}
	return from
}

// parseLocal parses a datetime-local field in Shanghai time; "" is zero.
func parseLocal(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04", s, shanghai)
	if err != nil {
		return t, fmt.Errorf("%w: time %q", errInvalid, s)
	}
	return t.UTC(), nil
}

func (c *Console) createNotice(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	p, a := c.principal(r)
	vals := map[string]string{}
	var err error
	for k, max := range map[string]int{"title": 200, "body": 5000, "category": 32, "priority": 32, "from": 32, "until": 32} {
		if vals[k], err = formValue(r, k, max); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	form := noticeForm{Title: vals["title"], Body: vals["body"], Category: vals["category"], Priority: vals["priority"],
		From: vals["from"], Until: vals["until"], Targets: r.PostForm["target"]}
	lang := langOf(r)
	// again shows the composer with what was typed and a problem to fix.
	again := func(problem string) {
		c.showNotices(w, r, http.StatusBadRequest, form, problem)
	}
	req := api.NoticeRequest{Title: vals["title"], Body: vals["body"],
		Category: protocol.NoticeCategory(vals["category"]), Priority: protocol.Priority(vals["priority"])}
	var fromErr, untilErr error
	req.ValidFrom, fromErr = parseLocal(vals["from"])
	req.ValidUntil, untilErr = parseLocal(vals["until"])
	switch {
	case strings.TrimSpace(req.Title) == "":
		again(T(lang, "notice.err.title"))
		return
	case fromErr != nil || untilErr != nil:
		again(T(lang, "notice.err.time"))
		return
	case !req.ValidUntil.IsZero() && !req.ValidUntil.After(startsAt(req.ValidFrom, c.cfg.Now())):
		again(T(lang, "notice.err.until"))
		return
	case len(r.PostForm["target"]) == 0:
		again(T(lang, "notice.err.targets"))
		return
	}
	for _, id := range r.PostForm["target"] {
		n := c.cfg.Tree.Node(id)
		if n == nil || !p.CanSee(id) {
			c.fail(w, r, fmt.Errorf("%w: target %q is outside your area", errInvalid, id))
			return
		}
		req.Targets = append(req.Targets, protocol.Target{Level: n.Level, ID: n.ID})
	}
	n, err := c.cfg.Notices.CreateNotice(asAccount(r, a), req)
	if ge := (*glyphs.Error)(nil); errors.As(err, &ge) {
		again(undrawable(lang, glyphs.Missing(vals["title"]+vals["body"])))
		return
	}
	if errors.Is(err, api.ErrBadRequest) {
		again(T(lang, "err.invalid") + err.Error())
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, withOK("/notices/"+n.ID, "notice.created"), http.StatusSeeOther)
}

// notice returns a notice the account may see.
func (c *Console) notice(r *http.Request, id string) (api.Notice, error) {
	p, _ := c.principal(r)
	all, err := c.cfg.Notices.Notices(r.Context())
	if err != nil {
		return api.Notice{}, err
	}
	for _, n := range all {
		if n.ID == id && visibleNotice(p, n) {
			return n, nil
		}
	}
	return api.Notice{}, fmt.Errorf("%w: notice %q", errNotFound, id)
}

type noticeData struct {
	Notice   api.Notice
	Delivery []report.Delivery
	History  []historyRow // who created and withdrew it, newest first
}

func (c *Console) noticePage(w http.ResponseWriter, r *http.Request) {
	n, err := c.notice(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	dl, err := c.cfg.Reports.NoticeDelivery(r.Context(), n.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	changes, err := c.cfg.Accounts.ObjectHistory(r.Context(), "notice:"+n.ID, historyLimit)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names, err := c.accountNames(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := noticeData{Notice: n, Delivery: dl}
	lang := langOf(r)
	for _, ch := range changes {
		d.History = append(d.History, historyRow{At: ch.At, Actor: actorName(lang, names, ch.Actor), Action: label(lang, "aact", ch.Action)})
	}
	c.render(w, r, http.StatusOK, "notice", n.Title, d)
}

func (c *Console) withdrawNotice(w http.ResponseWriter, r *http.Request) {
	n, err := c.notice(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	_, a := c.principal(r)
	if _, err := c.cfg.Notices.WithdrawNotice(asAccount(r, a), n.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, withOK("/notices/"+n.ID, "notice.withdrawn"), http.StatusSeeOther)
}

// asAccount is the request's context carrying the signed-in account as the
// actor (jsonhttp.WithActor) of the API-level services the console calls:
// they audit their changes (hub/api, hub/media) as made by that person.
func asAccount(r *http.Request, a accounts.Account) context.Context {
	return jsonhttp.WithActor(r.Context(), "account:"+a.ID)
}

// upload serves a media upload (Config.Upload) as made by the signed-in
// account.
func (c *Console) upload(w http.ResponseWriter, r *http.Request) {
	_, a := c.principal(r)
	c.cfg.Upload.ServeHTTP(w, r.WithContext(asAccount(r, a)))
}

type mediaData struct {
	Media     []media.View
	Pending   bool
	MaxUpload int64
}

func (c *Console) mediaPage(w http.ResponseWriter, r *http.Request) {
	ms, err := c.cfg.Store.MediaList(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := mediaData{MaxUpload: c.cfg.MaxUpload}
	for _, m := range ms {
		v := media.ViewOf(m)
		d.Media = append(d.Media, v)
		if v.File == nil && v.Reason == "" {
			d.Pending = true
		}
	}
	c.render(w, r, http.StatusOK, "media", T(langOf(r), "media"), d)
}

type fleetData struct {
	Kiosks  []api.Kiosk
	Remote  bool                   // remote actions are offered
	Updates map[string]kioskUpdate // by kiosk id; absent: never heard of updates
}

func (c *Console) fleetPage(w http.ResponseWriter, r *http.Request) {
	p, _ := c.principal(r)
	all, err := c.cfg.Notices.Kiosks(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	kus, err := c.cfg.Releases.KioskUpdates(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := fleetData{Remote: c.cfg.Remote != nil, Updates: map[string]kioskUpdate{}}
	for _, k := range all {
		if k.InOrgTree && p.CanSee(k.Community) || !k.InOrgTree && p.Node() == c.cfg.Tree.Root().ID {
			d.Kiosks = append(d.Kiosks, k)
			if u, ok := kus[k.ID]; ok {
				d.Updates[k.ID] = kioskUpdateOf(langOf(r), u)
			}
		}
	}
	c.render(w, r, http.StatusOK, "fleet", T(langOf(r), "fleet"), d)
}

type kioskData struct {
	Kiosk  api.Kiosk
	Media  report.KioskMedia
	Remote kioskRemote
	Update kioskUpdate
}

func (c *Console) kioskPage(w http.ResponseWriter, r *http.Request) {
	p, _ := c.principal(r)
	id := r.PathValue("id")
	k, ok := c.cfg.Tree.Kiosk(id)
	if !ok || !p.CanSee(k.Community) {
		c.fail(w, r, fmt.Errorf("%w: kiosk %q", errNotFound, id))
		return
	}
	all, err := c.cfg.Notices.Kiosks(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var d kioskData
	for _, x := range all {
		if x.ID == id {
			d.Kiosk = x
		}
	}
	if d.Media, err = c.cfg.Reports.KioskMedia(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Remote, err = c.remoteOf(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	kus, err := c.cfg.Releases.KioskUpdates(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Update = kioskUpdateOf(langOf(r), kus[id])
	c.render(w, r, http.StatusOK, "kiosk", k.Name, d)
}
