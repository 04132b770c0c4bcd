package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
	"github.com/shequ/shequ/protocol/glyphs"
)

// InboxPage is the number of cases on one inbox page.
const InboxPage = 50

// DueSoon is how close to its deadline an open case counts as due soon.
const DueSoon = 24 * time.Hour

// inboxFilter is the inbox's query, validated.
type inboxFilter struct {
	State, Source, Category, Community string
	Overdue, DueSoon                   bool
	After                              string
}

// query returns the filter as a query string, with after for the next page.
func (f inboxFilter) query(after string) string {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("state", f.State)
	set("source", f.Source)
	set("category", f.Category)
	set("community", f.Community)
	if f.Overdue {
		v.Set("overdue", "1")
	}
	if f.DueSoon {
		v.Set("duesoon", "1")
	}
	set("after", after)
	return v.Encode()
}

// parseInbox validates the inbox query: every value must be one the
// console offers, so nothing else reaches the database.
func parseInbox(q url.Values) (inboxFilter, error) {
	var f inboxFilter
	one := func(k string, allowed []string) (string, error) {
		vs := q[k]
		switch {
		case len(vs) == 0 || vs[0] == "":
			return "", nil
		case len(vs) > 1:
			return "", fmt.Errorf("%w: %s given twice", errInvalid, k)
		case allowed != nil && !contains(allowed, vs[0]):
			return "", fmt.Errorf("%w: unknown %s %q", errInvalid, k, vs[0])
		}
		return vs[0], nil
	}
	var err error
	if f.State, err = one("state", strs(cases.States)); err != nil {
		return f, err
	}
	if f.Source, err = one("source", strs(cases.Sources)); err != nil {
		return f, err
	}
	if f.Category, err = one("category", strs(protocol.FeedbackCategories)); err != nil {
		return f, err
	}
	if f.Community, err = one("community", nil); err != nil {
		return f, err
	}
	if f.Community != "" && protocol.ValidID(f.Community) != nil {
		return f, fmt.Errorf("%w: community %q", errInvalid, f.Community)
	}
	if f.After, err = one("after", nil); err != nil {
		return f, err
	}
	if f.After != "" && protocol.ValidID(f.After) != nil {
		return f, fmt.Errorf("%w: after %q", errInvalid, f.After)
	}
	for k, p := range map[string]*bool{"overdue": &f.Overdue, "duesoon": &f.DueSoon} {
		v, err := one(k, []string{"0", "1"})
		if err != nil {
			return f, err
		}
		*p = v == "1"
	}
	return f, nil
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// scopeFilter narrows a store filter to what an account may see: its node
// (by level), an officer's own tasks, a partner's own reports.
func (c *Console) scopeFilter(a accounts.Account, f *store.CaseFilter) error {
	n := c.cfg.Tree.Node(a.Node)
	if n == nil {
		return fmt.Errorf("%w: account node %q not in the org tree", errForbidden, a.Node)
	}
	switch n.Level {
	case protocol.LevelDistrict:
		f.District = n.ID
	case protocol.LevelStreet:
		f.Street = n.ID
	case protocol.LevelCommunity:
		f.Community = n.ID
	case protocol.LevelCity:
	default:
		return fmt.Errorf("%w: account node %q is a %s", errForbidden, a.Node, n.Level)
	}
	switch a.Role {
	case accounts.RoleOfficer:
		f.Assignee = a.ID
	case accounts.RolePartner:
		f.Reporter = a.ID
	case accounts.RoleTechnician:
		return errForbidden
	}
	return nil
}

type inboxData struct {
	Filter inboxFilter
	Cases  []cases.Case
	// Next (the query of the next page) and Export are template.URLs so
	// that the template keeps their = and & (url.Values.Encode made them
	// safe); as strings, html/template escapes them and the links lose
	// the filter and the page.
	Next        template.URL
	States      []string
	Sources     []string
	Categories  []string
	Communities []*orgtree.Node
	Now         time.Time
	CanCreate   bool
	OpenStates  []string
	Export      template.URL // the filter as a query, for the CSV export
	// Query is what was searched for (GET /cases/find), and Found what the
	// search says about its result; the list is then the cases found.
	Query string
	Found string
}

// storeFilter turns the inbox filter into a store filter within the
// account's reach.
func (c *Console) storeFilter(a accounts.Account, f inboxFilter) (store.CaseFilter, error) {
	p := c.cfg.Accounts.Principal(a)
	sf := store.CaseFilter{Source: f.Source, Category: f.Category, Limit: InboxPage}
	if f.State != "" {
		sf.States = []string{f.State}
	}
	if err := c.scopeFilter(a, &sf); err != nil {
		return sf, err
	}
	if f.Community != "" {
		if !p.CanSee(f.Community) {
			return sf, fmt.Errorf("%w: community %s", errNotFound, f.Community)
		}
		sf.Community = f.Community
	}
	now := c.cfg.Now()
	switch {
	case f.Overdue:
		sf.DueBefore = now
	case f.DueSoon:
		sf.DueFrom, sf.DueBefore = now, now.Add(DueSoon)
	}
	return sf, nil
}

func (c *Console) inbox(w http.ResponseWriter, r *http.Request) {
	p, a := c.principal(r)
	f, err := parseInbox(r.URL.Query())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sf, err := c.storeFilter(a, f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if f.After != "" {
		after, err := c.cfg.Cases.Case(r.Context(), f.After)
		if err == nil && !p.CanSee(after.Community) {
			err = fmt.Errorf("%w: case %s", errNotFound, f.After)
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		sf.After = &after
	}
	list, err := c.cfg.Cases.List(r.Context(), sf)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for i := range list {
		list[i] = cases.View(list[i], p)
	}
	d := c.newInboxData(a, f, list)
	if len(list) == InboxPage {
		d.Next = template.URL(f.query(list[len(list)-1].ID))
	}
	c.render(w, r, http.StatusOK, "inbox", T(langOf(r), "inbox"), d)
}

// newInboxData is the inbox page's data for filter f showing list.
func (c *Console) newInboxData(a accounts.Account, f inboxFilter, list []cases.Case) inboxData {
	return inboxData{Filter: f, Cases: list, States: strs(cases.States), Sources: strs(cases.Sources),
		Categories: strs(protocol.FeedbackCategories), Communities: c.communities(a.Node), Now: c.cfg.Now(),
		CanCreate: a.Role != accounts.RoleTechnician, OpenStates: strs(cases.OpenStates), Export: template.URL(f.query(""))}
}

// maxFind bounds what GET /cases/find takes.
const maxFind = 64

// findCase serves GET /cases/find?q=: a ticket number or a receipt's query
// code, as a resident reads it out on the phone. One case the account may
// see opens it; several (a query code shared by kiosks) are listed; none,
// or none within the account's reach, says so (the two are not told
// apart, so tickets outside the reach do not leak).
func (c *Console) findCase(w http.ResponseWriter, r *http.Request) {
	p, a := c.principal(r)
	lang := langOf(r)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := c.newInboxData(a, inboxFilter{}, nil)
	d.Query = q
	if q == "" {
		http.Redirect(w, r, "/cases", http.StatusSeeOther)
		return
	}
	var found []cases.Case
	err := fmt.Errorf("%w: too long", cases.ErrInvalid)
	if len(q) <= maxFind {
		found, err = c.cfg.Cases.Find(r.Context(), q)
	}
	if errors.Is(err, cases.ErrInvalid) {
		d.Found = T(lang, "find.invalid")
		c.render(w, r, http.StatusBadRequest, "inbox", T(lang, "inbox"), d)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, fc := range found {
		_, _, err := c.visibleCase(r, fc.ID)
		switch {
		case err == nil:
			d.Cases = append(d.Cases, cases.View(fc, p))
		case errors.Is(err, errNotFound), errors.Is(err, cases.ErrNotInScope), errors.Is(err, store.ErrNotFound):
		default:
			c.fail(w, r, err)
			return
		}
	}
	switch len(d.Cases) {
	case 0:
		d.Found = fmt.Sprintf(T(lang, "find.none"), q)
		c.render(w, r, http.StatusNotFound, "inbox", T(lang, "inbox"), d)
	case 1:
		http.Redirect(w, r, "/cases/"+d.Cases[0].ID, http.StatusSeeOther)
	default:
		d.Found = fmt.Sprintf(T(lang, "find.many"), q, len(d.Cases))
		c.render(w, r, http.StatusOK, "inbox", T(lang, "inbox"), d)
	}
}

// visibleCase loads a case's detail for the current account, applying the
// role rules on top of the org-tree scope: officers see their own tasks,
// partners their own reports.
func (c *Console) visibleCase(r *http.Request, id string) (cases.Detail, accounts.Principal, error) {
	p, a := c.principal(r)
	if protocol.ValidID(id) != nil {
		return cases.Detail{}, p, fmt.Errorf("%w: case %q", errNotFound, id)
	}
	d, err := c.cfg.Cases.Detail(r.Context(), id, p)
	if err != nil {
		return d, p, err
	}
	switch a.Role {
	case accounts.RoleOfficer:
		if d.Case.Assignee != a.ID {
			return cases.Detail{}, p, fmt.Errorf("%w: case %s is not %s's task", errNotFound, id, a.ID)
		}
	case accounts.RolePartner:
		if !strings.HasPrefix(d.Case.SourceRef, a.ID+"/") {
			return cases.Detail{}, p, fmt.Errorf("%w: case %s was not filed by %s", errNotFound, id, a.ID)
		}
	}
	return d, p, nil
}

// timelineEntry is a timeline event or a work record, in time order.
type timelineEntry struct {
	At     time.Time
	Who    string
	Role   string
	Action string
	Note   string
	Photos []store.PhotoRef
}

type caseData struct {
	cases.Detail
	Timeline  []timelineEntry
	Allowed   []string
	Officers  []store.AccountRecord
	Mergeable []cases.Case
	CanWork   bool
	Overdue   bool
	Ratings   []string
	// AnswerNote and AnswerError fill in a refused answer form again.
	AnswerNote, AnswerError string
}

func (c *Console) caseData(r *http.Request, d cases.Detail, p accounts.Principal) (caseData, error) {
	ctx := r.Context()
	cd := caseData{Detail: d, Ratings: strs(cases.Ratings)}
	for _, act := range cases.Allowed(d.Case, p) {
		cd.Allowed = append(cd.Allowed, string(act))
	}
	cd.Overdue = slices.Contains(cases.OpenStates, cases.State(d.Case.State)) && !d.Case.DueAt.IsZero() && d.Case.DueAt.Before(c.cfg.Now())
	cd.CanWork = cases.Handles(d.Case, p) && slices.Contains(cases.WorkStates, cases.State(d.Case.State)) &&
		(p.Role() == string(accounts.RoleOfficer) || p.Role() == string(accounts.RoleSquadLeader))
	accts, err := c.cfg.Store.Accounts(ctx)
	if err != nil {
		return cd, err
	}
	names := map[string]string{}
	for _, a := range accts {
		names[a.ID] = a.DisplayName
		if names[a.ID] == "" {
			names[a.ID] = a.Username
		}
		if a.Role == string(accounts.RoleOfficer) && accounts.CanSee(c.cfg.Tree, a.Node, d.Case.Community) {
			cd.Officers = append(cd.Officers, a)
		}
	}
	lang := langOf(r)
	who := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		switch {
		case id == cases.RoleSystem, id == cases.RoleResident:
			return T(lang, "role."+id)
		case strings.HasPrefix(id, "kiosk:"):
			return T(lang, "role.resident") + " · " + c.nodeName(strings.TrimPrefix(id, "kiosk:"))
		}
		return id
	}
	// Notes name officers by account id (承办人：<id>): show their names.
	note := func(n string) string {
		for id, name := range names {
			if strings.Contains(n, id) {
				n = strings.ReplaceAll(n, id, name)
			}
		}
		return n
	}
	for _, e := range d.Timeline {
		cd.Timeline = append(cd.Timeline, timelineEntry{At: e.At, Who: who(e.Actor), Role: e.Role, Action: e.Action, Note: note(e.Note)})
	}
	work, err := c.cfg.Cases.Work(ctx, d.Case.ID, p)
	if err != nil {
		return cd, err
	}
	for _, wr := range work {
		cd.Timeline = append(cd.Timeline, timelineEntry{At: wr.At, Who: who(wr.Actor), Action: "work", Note: wr.Note, Photos: wr.Photos})
	}
	slices.SortStableFunc(cd.Timeline, func(a, b timelineEntry) int { return a.At.Compare(b.At) })
	if contains([]string{string(accounts.RoleSquadLeader), string(accounts.RoleDistrictAdmin), string(accounts.RoleBureauAdmin)}, p.Role()) &&
		slices.Contains(cases.OpenStates, cases.State(d.Case.State)) && d.Case.Building != "" {
		cands, err := c.cfg.Cases.MergeCandidates(ctx, d.Case.ID)
		if err != nil {
			return cd, err
		}
		for _, m := range cands {
			if m.ID != d.Case.ID {
				cd.Mergeable = append(cd.Mergeable, cases.View(m, p))
			}
		}
	}
	return cd, nil
}

func (c *Console) casePage(w http.ResponseWriter, r *http.Request) {
	c.showCase(w, r, "case")
}

func (c *Console) taskPage(w http.ResponseWriter, r *http.Request) {
	c.showCase(w, r, "task")
}

func (c *Console) showCase(w http.ResponseWriter, r *http.Request, tmpl string) {
	d, p, err := c.visibleCase(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cd, err := c.caseData(r, d, p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, tmpl, d.Case.Ticket, cd)
}

// formValue returns one field of a parsed form, trimmed, at most max runes.
func formValue(r *http.Request, k string, max int) (string, error) {
	vs := r.PostForm[k]
	if len(vs) > 1 {
		return "", fmt.Errorf("%w: %s given twice", errInvalid, k)
	}
	if len(vs) == 0 {
		return "", nil
	}
	v := strings.TrimSpace(vs[0])
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
		return "", fmt.Errorf("%w: %s longer than %d characters", errInvalid, k, max)
	}
	return v, nil
}

// parseForm parses a url-encoded form within maxForm bytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	return nil
}

func (c *Console) caseAction(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	d, p, err := c.visibleCase(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	vals := map[string]string{}
	for k, max := range map[string]int{"action": 32, "officer": 64, "note": 2000, "rating": 32, "back": 512} {
		if vals[k], err = formValue(r, k, max); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	ctx, id := r.Context(), d.Case.ID
	if m := glyphs.Missing(vals["note"]); len(m) > 0 && cases.Action(vals["action"]) == cases.ActionAnswer &&
		answerReachesKiosk(d) && slices.Contains(cases.Allowed(d.Case, p), cases.ActionAnswer) {
		// The answer would show on a kiosk's case board as empty boxes:
		// show the answer form again with the reason and the text.
		cd, err := c.caseData(r, d, p)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		cd.AnswerNote, cd.AnswerError = vals["note"], undrawable(langOf(r), m)
		tmpl := "case"
		if strings.HasPrefix(vals["back"], "/m/") {
			tmpl = "task"
		}
		c.render(w, r, http.StatusBadRequest, tmpl, d.Case.Ticket, cd)
		return
	}
	switch act := cases.Action(vals["action"]); act {
	case cases.ActionDispatch, cases.ActionReassign:
		if err = c.checkOfficer(ctx, vals["officer"], d.Case); err == nil {
			_, err = c.cfg.Cases.Dispatch(ctx, id, p, vals["officer"], vals["note"])
		}
	case cases.ActionRate:
		_, err = c.cfg.Cases.Rate(ctx, id, p, cases.Rating(vals["rating"]), vals["note"])
	case cases.ActionAccept, cases.ActionReturn, cases.ActionRejectReturn, cases.ActionSendBack, cases.ActionAnswer,
		cases.ActionReopen, cases.ActionClose, cases.ActionSupervise:
		_, err = c.cfg.Cases.Apply(ctx, id, act, p, vals["note"])
	default:
		err = fmt.Errorf("%w: unknown action %q", errInvalid, act)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	back := "/cases/" + id
	if vals["back"] != "" {
		back = localPath(vals["back"])
	}
	http.Redirect(w, r, withOK(back, "act.done"), http.StatusSeeOther)
}

func withOK(path, key string) string {
	if strings.Contains(path, "?") {
		return path + "&ok=" + key
	}
	return path + "?ok=" + key
}

// checkOfficer checks that id is an officer whose squad serves the case.
func (c *Console) checkOfficer(ctx context.Context, id string, cs cases.Case) error {
	accts, err := c.cfg.Store.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if a.ID == id && a.Role == string(accounts.RoleOfficer) && accounts.CanSee(c.cfg.Tree, a.Node, cs.Community) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not an officer serving community %s", errInvalid, id, cs.Community)
}

func (c *Console) mergeCases(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	d, p, err := c.visibleCase(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	others := r.PostForm["other"]
	if len(others) == 0 || len(others) > store.MaxCasePage {
		c.fail(w, r, fmt.Errorf("%w: pick the cases to merge", errInvalid))
		return
	}
	for _, o := range others {
		if _, _, err := c.visibleCase(r, o); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	note, err := formValue(r, "note", 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.cfg.Cases.Merge(r.Context(), d.Case.ID, others, p, note); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, withOK("/cases/"+d.Case.ID, "act.done"), http.StatusSeeOther)
}

type newCaseData struct {
	Token       string
	Sources     []string
	Kinds       []string
	Categories  []string
	Communities []*orgtree.Node
	// Form holds what was typed when the form comes back with Error.
	Form  map[string]string
	Error string
}

// sourcesFor are the sources an account may file a case under.
func sourcesFor(role accounts.Role) []cases.Source {
	switch role {
	case accounts.RolePartner:
		return []cases.Source{cases.SourcePartner}
	case accounts.RoleOfficer:
		return []cases.Source{cases.SourcePatrol}
	}
	return []cases.Source{cases.SourceHotline, cases.SourcePatrol, cases.SourcePartner}
}

func (c *Console) newCasePage(w http.ResponseWriter, r *http.Request) {
	c.showNewCase(w, r, http.StatusOK, protocol.NewID(), nil, "")
}

// showNewCase renders the new case form with token, filled in with form
// and showing problem when they are set.
func (c *Console) showNewCase(w http.ResponseWriter, r *http.Request, code int, token string, form map[string]string, problem string) {
	_, a := c.principal(r)
	c.render(w, r, code, "newcase", T(langOf(r), "newcase"), newCaseData{
		Token: token, Sources: strs(sourcesFor(a.Role)), Kinds: strs(protocol.FeedbackKinds),
		Categories: strs(protocol.FeedbackCategories), Communities: c.communities(a.Node), Form: form, Error: problem,
	})
}

// createCase files a case from the form; the form's token makes it
// idempotent, so a double submit files one case.
func (c *Console) createCase(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	p, a := c.principal(r)
	vals := map[string]string{}
	var err error
	for k, max := range map[string]int{"token": 64, "source": 16, "community": 64, "kind": 32, "category": 32,
		"building": 16, "unit": 16, "room": 16, "description": protocol.MaxDescription, "phone": 20} {
		if vals[k], err = formValue(r, k, max); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	src := cases.Source(vals["source"])
	switch {
	case protocol.ValidID(vals["token"]) != nil:
		err = fmt.Errorf("%w: the form has no token; reload it", errInvalid)
	case !slices.Contains(sourcesFor(a.Role), src):
		err = fmt.Errorf("%w: source %q", errInvalid, src)
	case !p.CanSee(vals["community"]):
		err = fmt.Errorf("%w: community %q", errInvalid, vals["community"])
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// Mistakes a person makes come back with the form as typed (the same
	// token, so fixing and resubmitting still files one case).
	lang := langOf(r)
	switch {
	case strings.TrimSpace(vals["description"]) == "":
		c.showNewCase(w, r, http.StatusBadRequest, vals["token"], vals, T(lang, "newcase.err.description"))
		return
	case vals["phone"] != "" && protocol.ValidPhone(vals["phone"]) != nil:
		c.showNewCase(w, r, http.StatusBadRequest, vals["token"], vals, T(lang, "newcase.err.phone"))
		return
	}
	cs, _, err := c.cfg.Cases.Create(r.Context(), cases.NewCase{
		Source: src, SourceRef: a.ID + "/" + vals["token"], Community: vals["community"],
		Kind: protocol.FeedbackKind(vals["kind"]), Category: protocol.FeedbackCategory(vals["category"]),
		Where:       protocol.Where{Building: vals["building"], Unit: vals["unit"], Room: vals["room"]},
		Description: vals["description"], Phone: vals["phone"],
		// The token is the form's, whichever source was picked: sent
		// again with another source, it is still the same case.
		SameRefAs: sourcesFor(a.Role),
	}, p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, withOK("/cases/"+cs.ID, "newcase.created"), http.StatusSeeOther)
}

// addWork records work on a case: a note and up to MaxWorkPhotos photos,
// each made safe by Config.Photo before it is stored.
func (c *Console) addWork(w http.ResponseWriter, r *http.Request) {
	// RequireSession parsed the multipart form to find the CSRF token.
	if r.MultipartForm == nil {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			c.fail(w, r, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
	}
	defer func() {
		if err := r.MultipartForm.RemoveAll(); err != nil {
			c.log.Warn("removing upload temp files", "err", err)
		}
	}()
	d, p, err := c.visibleCase(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	note, back := "", ""
	if vs := r.MultipartForm.Value["note"]; len(vs) == 1 {
		note = strings.TrimSpace(vs[0])
	}
	if vs := r.MultipartForm.Value["back"]; len(vs) == 1 {
		back = localPath(vs[0])
	}
	files := r.MultipartForm.File["photos"]
	var photos []store.Photo
	for _, fh := range files {
		if fh.Size == 0 {
			continue // an empty file input
		}
		ph, err := c.readPhoto(fh)
		if err != nil {
			c.fail(w, r, fmt.Errorf("%w: photo %q: %w", errInvalid, fh.Filename, err))
			return
		}
		photos = append(photos, ph)
	}
	if _, err := c.cfg.Cases.AddWork(r.Context(), d.Case.ID, p, note, photos); err != nil {
		c.fail(w, r, err)
		return
	}
	if back == "" {
		back = "/cases/" + d.Case.ID
	}
	http.Redirect(w, r, withOK(back, "work.saved"), http.StatusSeeOther)
}

func (c *Console) readPhoto(fh *multipart.FileHeader) (store.Photo, error) {
	f, err := fh.Open()
	if err != nil {
		return store.Photo{}, err
	}
	defer f.Close()
	return c.cfg.Photo(f)
}

func (c *Console) photo(w http.ResponseWriter, r *http.Request) {
	d, p, err := c.visibleCase(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sha := r.PathValue("sha")
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		c.fail(w, r, fmt.Errorf("%w: photo %q", errNotFound, sha))
		return
	}
	ph, err := c.cfg.Cases.Photo(r.Context(), d.Case.ID, sha, p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(ph.JPEG)))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	if _, err := w.Write(ph.JPEG); err != nil {
		c.log.Debug("writing a photo", "err", err)
	}
}

type tasksData struct {
	Open     []cases.Case
	Answered []cases.Case
	Checkins []store.Checkin
}

// tasksPage lists an officer's open and recently answered tasks (a squad
// leader's: the open cases of the squad), and recent check-ins.
func (c *Console) tasksPage(w http.ResponseWriter, r *http.Request) {
	p, a := c.principal(r)
	ctx := r.Context()
	base := store.CaseFilter{Limit: InboxPage}
	if a.Role == accounts.RoleOfficer {
		base.Assignee = a.ID
	} else {
		base.Street = a.Node
	}
	open := base
	open.States = strs(cases.OpenStates)
	var d tasksData
	var err error
	if d.Open, err = c.cfg.Cases.List(ctx, open); err != nil {
		c.fail(w, r, err)
		return
	}
	answered := base
	answered.States = []string{string(cases.StateAnswered)}
	answered.Limit = 10
	if d.Answered, err = c.cfg.Cases.List(ctx, answered); err != nil {
		c.fail(w, r, err)
		return
	}
	for i := range d.Open {
		d.Open[i] = cases.View(d.Open[i], p)
	}
	for i := range d.Answered {
		d.Answered[i] = cases.View(d.Answered[i], p)
	}
	if d.Checkins, err = c.cfg.Store.Checkins(ctx, store.CheckinFilter{Officer: a.ID, Limit: 5}); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "tasks", T(langOf(r), "tasks"), d)
}

type checkinData struct {
	Kiosk, Community string
	Query            string // k, s and sig, to post back
	Done             *store.Checkin
}

// verifyCheckin checks a check-in code: well-formed, for a kiosk the
// account's squad serves, signed by that kiosk's enrolled device, current.
func (c *Console) verifyCheckin(r *http.Request, q url.Values) (kiosk string, slot int64, err error) {
	p, _ := c.principal(r)
	kiosk, slot, sig, err := protocol.ParseCheckin(q)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", errCheckin, err)
	}
	k, ok := c.cfg.Tree.Kiosk(kiosk)
	if !ok || !p.CanSee(k.Community) {
		return "", 0, fmt.Errorf("%w: kiosk %q is not in your area", errCheckin, kiosk)
	}
	pub, err := c.cfg.DeviceKey(r.Context(), kiosk)
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, fmt.Errorf("%w: kiosk %q has no enrolled device", errCheckin, kiosk)
	}
	if err != nil {
		return "", 0, err
	}
	if err := protocol.VerifyCheckin(pub, kiosk, slot, sig, c.cfg.Now()); err != nil {
		return "", 0, fmt.Errorf("%w: %w", errCheckin, err)
	}
	return kiosk, slot, nil
}

var errCheckin = errors.New("console: bad check-in code")

func (c *Console) checkinFail(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, errCheckin) {
		c.fail(w, r, err)
		return
	}
	c.log.Info("check-in refused", "err", err)
	c.render(w, r, http.StatusBadRequest, "phone_error", T(langOf(r), "checkin"), T(langOf(r), "checkin.bad"))
}

// checkinPage shows the confirmation form for a scanned code; it records
// nothing (a GET never changes state).
func (c *Console) checkinPage(w http.ResponseWriter, r *http.Request) {
	kiosk, _, err := c.verifyCheckin(r, r.URL.Query())
	if err != nil {
		c.checkinFail(w, r, err)
		return
	}
	k, _ := c.cfg.Tree.Kiosk(kiosk)
	c.render(w, r, http.StatusOK, "checkin", T(langOf(r), "checkin"), checkinData{Kiosk: kiosk, Community: k.Community,
		Query: r.URL.RawQuery})
}

// checkin records a visit or patrol once the code verifies again.
func (c *Console) checkin(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	q, err := url.ParseQuery(r.PostForm.Get("code"))
	if err != nil {
		c.checkinFail(w, r, fmt.Errorf("%w: %v", errCheckin, err))
		return
	}
	kiosk, slot, err := c.verifyCheckin(r, q)
	if err != nil {
		c.checkinFail(w, r, err)
		return
	}
	kind := r.PostForm.Get("kind")
	if kind != "visit" && kind != "patrol" {
		c.fail(w, r, fmt.Errorf("%w: kind %q", errInvalid, kind))
		return
	}
	note, err := formValue(r, "note", 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	_, a := c.principal(r)
	k, _ := c.cfg.Tree.Kiosk(kiosk)
	ci, _, err := c.cfg.Store.AddCheckin(r.Context(), store.Checkin{ID: protocol.NewID(), Officer: a.ID, Kiosk: kiosk,
		Community: k.Community, Slot: slot, At: c.cfg.Now().UTC(), Kind: kind, Note: note})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.cfg.Accounts.Audit(r.Context(), accounts.AuditEntry{Actor: "account:" + a.ID, Action: "checkin." + kind,
		Object: "kiosk:" + kiosk, After: ci}); err != nil {
		c.log.Error("audit of a check-in", "err", err)
	}
	c.render(w, r, http.StatusOK, "checkin", T(langOf(r), "checkin"), checkinData{Kiosk: kiosk, Community: k.Community, Done: &ci})
}
