package resident

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/photo"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// option is one choice of a radio group or select.
type option struct {
	Value, Key string
	Selected   bool
}

// formView is the data of the report form.
type formView struct {
	CommunityName, KioskName string
	Token                    formToken
	Issued                   string
	Values                   map[string]string
	Kinds, Categories        []option
	Errors                   []string
	Reselect                 bool // photos were sent but must be chosen again
	Fresh                    bool // the token was renewed
	MaxDescription           int
	MaxWhere                 int
}

// place resolves the community and kiosk of a code: the community must be
// a community of the org tree; a kiosk that is unknown or elsewhere is
// dropped.
func (p *Pages) place(community, kiosk string) (communityName, kioskID, kioskName string, ok bool) {
	n := p.cfg.Tree.Node(community)
	if n == nil || n.Level != protocol.LevelCommunity {
		return "", "", "", false
	}
	if k, found := p.cfg.Tree.Kiosk(kiosk); found && k.Community == community {
		return n.Name, k.ID, k.Name, true
	}
	return n.Name, "", "", true
}

// formURL is the address of a community's (and kiosk's) form.
func formURL(community, kiosk string) string {
	v := url.Values{fCommunity: {community}}
	if kiosk != "" {
		v.Set(fKiosk, kiosk)
	}
	return "/s?" + v.Encode()
}

// formPage serves GET /s?c={community}&k={kiosk}: a new form.
func (p *Pages) formPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cname, kiosk, kname, ok := p.place(q.Get(fCommunity), q.Get(fKiosk))
	if !ok {
		p.fail(w, r, http.StatusNotFound, "err.community", "")
		return
	}
	tok := p.newToken(q.Get(fCommunity), kiosk, p.cfg.Now())
	// No no-store: going back to the form must show this same form (and
	// token), so that sending it again finds the case it made.
	w.Header().Set("Cache-Control", "private, max-age=0")
	p.showForm(w, r, http.StatusOK, cname, kname, tok, map[string]string{fKind: string(protocol.KindComplaint)}, nil)
}

func (p *Pages) showForm(w http.ResponseWriter, r *http.Request, code int, cname, kname string, tok formToken,
	values map[string]string, fv *formView) {
	if fv == nil {
		fv = &formView{}
	}
	fv.CommunityName, fv.KioskName, fv.Token, fv.Values = cname, kname, tok, values
	fv.Issued = strconv.FormatInt(tok.Issued, 10)
	fv.MaxDescription, fv.MaxWhere = protocol.MaxDescription, protocol.MaxWhereField
	for _, k := range protocol.FeedbackKinds {
		fv.Kinds = append(fv.Kinds, option{string(k), "kind." + string(k), values[fKind] == string(k)})
	}
	for _, c := range protocol.FeedbackCategories {
		fv.Categories = append(fv.Categories, option{string(c), "category." + string(c), values[fCategory] == string(c)})
	}
	p.render(w, r, code, "form", "form.title", formURL(tok.Community, tok.Kiosk), fv)
}

// submit serves POST /s: a report.
func (p *Pages) submit(w http.ResponseWriter, r *http.Request) {
	if !p.allowAttempt(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUpload)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		p.fail(w, r, http.StatusBadRequest, "err.badrequest", "")
		return
	}
	sub, err := decodeForm(r.Body, params["boundary"])
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge), errors.As(err, &tooBig):
		p.fail(w, r, http.StatusRequestEntityTooLarge, "err.toolarge", "")
		return
	case err != nil:
		p.log.Info("a report form could not be decoded", "err", err)
		p.fail(w, r, http.StatusBadRequest, "err.badrequest", "")
		return
	}
	tok, ok := p.tokenOf(sub.Values)
	if !ok {
		p.fail(w, r, http.StatusBadRequest, "err.form", "")
		return
	}
	cname, kiosk, kname, ok := p.place(tok.Community, tok.Kiosk)
	if !ok {
		p.fail(w, r, http.StatusNotFound, "err.community", "")
		return
	}
	lang := langOf(w, r)
	values := sub.Values
	fv := &formView{Reselect: len(sub.Photos) > 0}
	age := p.cfg.Now().Sub(time.Unix(tok.Issued, 0))
	switch {
	case values[fHoneypot] != "":
		fv.Errors = append(fv.Errors, T(lang, "invalid.honeypot"))
		p.showForm(w, r, http.StatusBadRequest, cname, kname, tok, values, fv)
		return
	case age < MinFillTime:
		fv.Errors = append(fv.Errors, T(lang, "invalid.fast"))
		p.showForm(w, r, http.StatusBadRequest, cname, kname, tok, values, fv)
		return
	case age > MaxFormAge:
		fv.Errors = append(fv.Errors, T(lang, "invalid.expired"))
		fv.Fresh = true
		p.showForm(w, r, http.StatusBadRequest, cname, kname, p.newToken(tok.Community, kiosk, p.cfg.Now()), values, fv)
		return
	}
	rep, errs := validate(values, lang)
	if sub.TooManyPhotos {
		errs = append(errs, T(lang, "invalid.photos"))
	}
	if len(errs) == 0 {
		// The form is right: now it counts as a submission, before the
		// photos are decoded (the costly part).
		if ok, msg := p.allowSubmission(w, r); !ok {
			fv.Errors = []string{msg}
			p.showForm(w, r, http.StatusTooManyRequests, cname, kname, tok, values, fv)
			return
		}
	}
	var photos []store.Photo
	for _, u := range sub.Photos {
		if u.TooLarge {
			errs = append(errs, Tf(lang, "invalid.photo.big", u.Name))
			continue
		}
		if len(errs) > 0 {
			continue // not worth decoding: the form goes back anyway
		}
		ph, err := p.cfg.Photo(bytes.NewReader(u.Data))
		switch {
		case errors.Is(err, photo.ErrTooLarge):
			errs = append(errs, Tf(lang, "invalid.photo.big", u.Name))
		case errors.Is(err, photo.ErrTooManyPixels):
			errs = append(errs, Tf(lang, "invalid.photo.px", u.Name))
		case errors.Is(err, photo.ErrUnsupported), errors.Is(err, photo.ErrCorrupt):
			errs = append(errs, Tf(lang, "invalid.photo.bad", u.Name))
		case err != nil:
			p.internal(w, r, fmt.Errorf("normalize a photo: %w", err))
			return
		}
		photos = append(photos, ph)
	}
	if len(errs) > 0 {
		fv.Errors = errs
		p.showForm(w, r, http.StatusBadRequest, cname, kname, tok, values, fv)
		return
	}
	c, err := p.file(r.Context(), tok, kiosk, rep, photos)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/t/"+c.Ticket+"?"+url.Values{"key": {p.followKey(c.Ticket)}, "new": {"1"}}.Encode(),
		http.StatusSeeOther)
}

// file creates the case of a report once per form token, and stores its
// photos with it: on the first submission, or on a later one if an
// earlier one created the case but did not get to store its photos.
func (p *Pages) file(ctx context.Context, tok formToken, kiosk string, rep report, photos []store.Photo) (cases.Case, error) {
	unlock, err := p.lock(ctx, tok.ID)
	if err != nil {
		return cases.Case{}, fmt.Errorf("file a report: %w", err)
	}
	defer unlock()
	c, dup, err := p.cfg.Cases.Create(ctx, cases.NewCase{
		Source: cases.SourceQRCode, SourceRef: tok.ID, Kiosk: kiosk, Community: tok.Community,
		Kind: rep.Kind, Category: rep.Category, Where: rep.Where, Description: rep.Description, Phone: rep.Phone,
	}, residentScope{community: tok.Community, id: "qrcode:" + tok.ID})
	if err != nil {
		return c, fmt.Errorf("file a report: %w", err)
	}
	if len(photos) == 0 {
		return c, nil
	}
	if dup {
		ws, err := p.cfg.Cases.Work(ctx, c.ID, cases.System)
		if err != nil {
			return c, fmt.Errorf("file a report: %w", err)
		}
		for _, w := range ws {
			if w.Actor == cases.RoleResident {
				return c, nil
			}
		}
	}
	if _, err := p.cfg.Cases.AddReportPhotos(ctx, c.ID, photos); err != nil {
		return c, fmt.Errorf("file a report: %w", err)
	}
	return c, nil
}

// residentScope is a resident acting on the cases of one community: filing
// a report from its code, rating a case through its follow link.
type residentScope struct{ community, id string }

func (r residentScope) CanSee(node string) bool { return node == r.community }
func (r residentScope) Role() string            { return cases.RoleResident }
func (r residentScope) ID() string              { return r.id }

var _ cases.Scope = residentScope{}
