package open311

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// MaxRange is the longest start_date–end_date span of a listing, and the
// default span (ending now) when neither is given.
const MaxRange = 90 * 24 * time.Hour

func category(code string) (protocol.FeedbackCategory, bool) {
	c := protocol.FeedbackCategory(code)
	_, ok := services[c]
	return c, ok
}

// createRequest files a case: POST requests.{fmt}.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request, format, _ string) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		s.fail(w, format, apiError{http.StatusBadRequest, "send the request as application/x-www-form-urlencoded"})
		return
	}
	body, code, err := jsonhttp.ReadBody(r, MaxBody)
	if err != nil {
		s.fail(w, format, apiError{code, err.Error()})
		return
	}
	f, err := decodePostForm(body)
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	if f.APIKey == "" {
		// Some clients send the key in the query.
		q, err := decodeQuery(r.URL.RawQuery, "api_key")
		if err != nil {
			s.fail(w, format, badInput(err))
			return
		}
		f.APIKey = q["api_key"]
	} else if r.URL.RawQuery != "" {
		s.fail(w, format, apiError{http.StatusBadRequest, "send every parameter in the body"})
		return
	}
	k, ok := s.admit(w, r, format, f.APIKey, true)
	if !ok {
		return
	}
	if _, aerr := s.jurisdiction(f.Jurisdiction, k); aerr != nil {
		s.fail(w, format, *aerr)
		return
	}
	if f.ServiceCode == "" {
		s.fail(w, format, apiError{http.StatusBadRequest, "service_code is required"})
		return
	}
	cat, ok := category(f.ServiceCode)
	if !ok {
		s.fail(w, format, apiError{http.StatusNotFound, "service_code not found"})
		return
	}
	n, errs := s.newCase(k, cat, f)
	if len(errs) > 0 {
		s.fail(w, format, errs...)
		return
	}
	c, dup, err := s.cfg.Cases.Create(r.Context(), n, k)
	switch {
	case errors.Is(err, cases.ErrInvalid):
		s.fail(w, format, apiError{http.StatusBadRequest, err.Error()})
		return
	case err != nil:
		s.internal(w, format, err)
		return
	}
	if dup {
		s.log.Info("open311: repeated request", "key", k.Open311Key.ID, "case", c.ID, "ticket", c.Ticket)
	} else {
		s.log.Info("open311: case filed", "key", k.Open311Key.ID, "case", c.ID, "ticket", c.Ticket)
	}
	out := []created{{ID: c.Ticket, ServiceNotice: "已受理，工单号 " + c.Ticket + "。" + s.notice(c.Category)}}
	s.write(w, format, http.StatusOK, out, serviceRequests[created]{Requests: out})
}

// notice is the service_notice of a category: its time limit.
func (s *Server) notice(cat string) string {
	return fmt.Sprintf("本类事项自派单起 %d 个工作日内办结。Handled within %d working days of dispatch.",
		s.cfg.Cases.TimeLimit(cat), s.cfg.Cases.TimeLimit(cat))
}

// newCase checks a request's attributes, location and contact against the
// service definition and the key, and returns the case to create or every
// problem found (400 errors).
func (s *Server) newCase(k *key, cat protocol.FeedbackCategory, f postForm) (cases.NewCase, []apiError) {
	var errs []apiError
	bad := func(format string, args ...any) {
		errs = append(errs, apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)})
	}
	def := definition(cat)
	attrs := make(map[string]attribute, len(def.Attributes))
	for _, a := range def.Attributes {
		attrs[a.Code] = a
		v, given := f.Attributes[a.Code]
		switch {
		case !given || v == "":
			if a.Required {
				bad("attribute[%s] is required", a.Code)
			}
		case len(a.Values) > 0 && !slices.ContainsFunc(a.Values, func(x value) bool { return x.Key == v }):
			keys := make([]string, len(a.Values))
			for i, x := range a.Values {
				keys[i] = x.Key
			}
			bad("attribute[%s] must be one of %s", a.Code, strings.Join(keys, ", "))
		}
	}
	codes := make([]string, 0, len(f.Attributes))
	for code := range f.Attributes {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		if _, ok := attrs[code]; !ok {
			bad("attribute[%s] is not an attribute of service %s", code, cat)
		}
	}
	where := protocol.Where{Building: f.Attributes[attrBuilding], Unit: f.Attributes[attrUnit], Room: f.Attributes[attrRoom]}
	if err := where.Validate(); err != nil {
		bad("building, unit and room have at most %d characters each", protocol.MaxWhereField)
	}
	ref := f.Attributes[attrExternalID]
	if ref != "" && !validRef(ref) {
		bad("attribute[%s] must be 1-%d characters of A-Z a-z 0-9 . _ -", attrExternalID, maxExternalID)
	}

	// Location: a community (or a kiosk, standing for its community)
	// within the key's nodes.
	community := ""
	switch node := s.cfg.Tree.Node(f.AddressID); {
	case f.AddressID == "":
		bad("address_id is required: the id of a community (or kiosk) of the org tree")
	case node == nil || node.Level != protocol.LevelCommunity && node.Level != protocol.LevelKiosk:
		bad("address_id %s is not a community or kiosk", printable(f.AddressID))
	case !k.CanSee(node.ID):
		bad("address_id %s is outside the key's jurisdiction", printable(f.AddressID))
	case node.Level == protocol.LevelKiosk:
		community = node.Parent().ID
	default:
		community = node.ID
	}
	var coords string
	if f.Lat != "" || f.Long != "" {
		lat, err1 := strconv.ParseFloat(f.Lat, 64)
		long, err2 := strconv.ParseFloat(f.Long, 64)
		if err1 != nil || err2 != nil || lat < -90 || lat > 90 || long < -180 || long > 180 {
			bad("lat and long must both be given, as WGS84 degrees")
		} else {
			coords = strconv.FormatFloat(lat, 'f', -1, 64) + ", " + strconv.FormatFloat(long, 'f', -1, 64)
		}
	}
	if utf8.RuneCountInString(f.AddressString) > maxAddress {
		bad("address_string has more than %d characters", maxAddress)
	}
	if utf8.RuneCountInString(f.Description) > maxDescription {
		bad("description has more than %d characters", maxDescription)
	}
	phone := normalizePhone(f.Phone)
	if err := protocol.ValidPhone(phone); err != nil {
		bad("phone must have 5-20 digits")
	}
	if len(errs) > 0 {
		return cases.NewCase{}, errs
	}

	// The description as staff read it: flags from the attributes first,
	// then the words, then the location given beside the community.
	var lines []string
	if f.Attributes[attrDangerNow] == "yes" {
		lines = append(lines, "【有人身危险】")
	}
	if f.Attributes[attrOngoing] == "yes" {
		lines = append(lines, "【正在施工】")
	}
	if d := strings.TrimSpace(f.Description); d != "" {
		lines = append(lines, d)
	}
	if a := strings.TrimSpace(f.AddressString); a != "" {
		lines = append(lines, "地址："+a)
	}
	if coords != "" {
		lines = append(lines, "坐标（WGS84）："+coords)
	}
	if ref == "" {
		ref = protocol.NewID()
	}
	return cases.NewCase{
		Source: cases.Source(k.Source), SourceRef: k.Open311Key.ID + "/" + ref, Community: community,
		Kind: protocol.FeedbackKind(f.Attributes[attrKind]), Category: cat, Where: where,
		Description: strings.Join(lines, "\n"), Phone: phone,
	}, nil
}

func validRef(s string) bool {
	if s == "" || len(s) > maxExternalID {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// normalizePhone drops spaces, hyphens and brackets and a leading +86.
func normalizePhone(p string) string {
	p = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '(' || r == ')' {
			return -1
		}
		return r
	}, p)
	return strings.TrimPrefix(p, "+86")
}

// keyQuery authenticates the api_key of a reading endpoint, applies the
// rate limit and checks jurisdiction_id. It returns the key and the
// store query scoping reads to the key's own cases.
func (s *Server) keyQuery(w http.ResponseWriter, r *http.Request, format string, q map[string]string) (*key, store.Open311Query, bool) {
	k, ok := s.admit(w, r, format, q["api_key"], true)
	if !ok {
		return nil, store.Open311Query{}, false
	}
	node, aerr := s.jurisdiction(q["jurisdiction_id"], k)
	if aerr != nil {
		s.fail(w, format, *aerr)
		return nil, store.Open311Query{}, false
	}
	sq := store.Open311Query{Source: k.Source, Reporter: k.Open311Key.ID, Nodes: k.Nodes}
	if node != "" {
		sq.Nodes = []string{node}
	}
	if slices.Contains(sq.Nodes, s.cfg.Tree.Root().ID) {
		sq.Nodes = nil // the whole city
	}
	return k, sq, true
}

// dateRange reads start_date and end_date: W3C date-times with a time
// zone, at most MaxRange apart; a missing end is start+MaxRange (or now),
// a missing start is end-MaxRange.
func (s *Server) dateRange(q map[string]string) (from, to time.Time, aerr *apiError) {
	parse := func(name string) (time.Time, error) {
		v := q[name]
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return t, fmt.Errorf("%s must be a W3C date-time with a time zone, e.g. 2026-11-26T09:00:00+08:00", name)
		}
		return t, nil
	}
	from, err := parse("start_date")
	if err != nil {
		return from, to, &apiError{http.StatusBadRequest, err.Error()}
	}
	to, err = parse("end_date")
	if err != nil {
		return from, to, &apiError{http.StatusBadRequest, err.Error()}
	}
	switch {
	case from.IsZero() && to.IsZero():
		to = s.cfg.Now()
		from = to.Add(-MaxRange)
	case to.IsZero():
		to = from.Add(MaxRange)
	case from.IsZero():
		from = to.Add(-MaxRange)
	}
	switch {
	case to.Before(from):
		return from, to, &apiError{http.StatusBadRequest, "end_date is before start_date"}
	case to.Sub(from) > MaxRange:
		return from, to, &apiError{http.StatusBadRequest, "start_date and end_date may be at most 90 days apart"}
	}
	return from, to, nil
}

// listRequests is GET requests.{fmt}.
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, format, _ string) {
	q, err := decodeQuery(r.URL.RawQuery, "api_key", "jurisdiction_id", "service_request_id", "service_code",
		"start_date", "end_date", "status")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	_, sq, ok := s.keyQuery(w, r, format, q)
	if !ok {
		return
	}
	ids, err := splitList("service_request_id", q["service_request_id"])
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	if len(ids) > 0 {
		sq.Tickets = ids // overrides every other filter
	} else {
		if sq.Categories, err = splitList("service_code", q["service_code"]); err != nil {
			s.fail(w, format, badInput(err))
			return
		}
		for _, c := range sq.Categories {
			if _, ok := category(c); !ok {
				s.fail(w, format, apiError{http.StatusBadRequest, fmt.Sprintf("service_code %s not found", printable(c))})
				return
			}
		}
		statuses, err := splitList("status", q["status"])
		if err != nil {
			s.fail(w, format, badInput(err))
			return
		}
		for _, st := range statuses {
			switch st {
			case "open":
				sq.States = append(sq.States, stateStrings(cases.OpenStates)...)
			case "closed":
				sq.States = append(sq.States, stateStrings(closedStates())...)
			default:
				s.fail(w, format, apiError{http.StatusBadRequest, "status must be open, closed or both (comma-separated)"})
				return
			}
		}
		from, to, aerr := s.dateRange(q)
		if aerr != nil {
			s.fail(w, format, *aerr)
			return
		}
		sq.From, sq.To = from, to
	}
	s.replyRequests(w, r, format, sq, "")
}

// getRequest is GET requests/{service_request_id}.{fmt}.
func (s *Server) getRequest(w http.ResponseWriter, r *http.Request, format, id string) {
	q, err := decodeQuery(r.URL.RawQuery, "api_key", "jurisdiction_id")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	_, sq, ok := s.keyQuery(w, r, format, q)
	if !ok {
		return
	}
	sq.Tickets = []string{id}
	s.replyRequests(w, r, format, sq, "service_request_id not found")
}

// replyRequests lists the cases of sq; notFound, if set, is the 404 error
// when there is none.
func (s *Server) replyRequests(w http.ResponseWriter, r *http.Request, format string, sq store.Open311Query, notFound string) {
	cs, err := s.cfg.Store.Open311Cases(r.Context(), sq)
	if err != nil {
		s.internal(w, format, err)
		return
	}
	if len(cs) == 0 && notFound != "" {
		s.fail(w, format, apiError{http.StatusNotFound, notFound})
		return
	}
	out := make([]request, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.request(c))
	}
	s.write(w, format, http.StatusOK, out, serviceRequests[request]{Requests: out})
}

// token is GET tokens/{token}.{fmt}: a token is a case id.
func (s *Server) token(w http.ResponseWriter, r *http.Request, format, tok string) {
	q, err := decodeQuery(r.URL.RawQuery, "api_key", "jurisdiction_id")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	_, sq, ok := s.keyQuery(w, r, format, q)
	if !ok {
		return
	}
	sq.IDs = []string{tok}
	cs, err := s.cfg.Store.Open311Cases(r.Context(), sq)
	if err != nil {
		s.internal(w, format, err)
		return
	}
	if len(cs) == 0 {
		s.fail(w, format, apiError{http.StatusNotFound, "token not found"})
		return
	}
	out := []tokenReply{{ID: cs[0].Ticket, Token: cs[0].ID}}
	s.write(w, format, http.StatusOK, out, serviceRequests[tokenReply]{Requests: out})
}

// updates is GET servicerequestupdates.{fmt}: the timeline of the key's
// cases in the date range, oldest first.
func (s *Server) updates(w http.ResponseWriter, r *http.Request, format, _ string) {
	q, err := decodeQuery(r.URL.RawQuery, "api_key", "jurisdiction_id", "service_request_id", "start_date", "end_date")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	_, sq, ok := s.keyQuery(w, r, format, q)
	if !ok {
		return
	}
	if sq.Tickets, err = splitList("service_request_id", q["service_request_id"]); err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	from, to, aerr := s.dateRange(q)
	if aerr != nil {
		s.fail(w, format, *aerr)
		return
	}
	evs, err := s.cfg.Store.Open311Updates(r.Context(), sq, from, to)
	if err != nil {
		s.internal(w, format, err)
		return
	}
	out := make([]update, 0, len(evs))
	for _, e := range evs {
		out = append(out, update{
			UpdateID: strconv.FormatInt(e.Seq, 10), ServiceRequestID: e.Ticket, Status: status(e.To),
			UpdatedDatetime: w3(e.At), Description: publicStep(e.CaseEvent),
		})
	}
	s.write(w, format, http.StatusOK, out, serviceRequestUpdates{Updates: out})
}

func stateStrings(ss []cases.State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// closedStates are the states GeoReport calls closed: the case has been
// answered (or closed).
func closedStates() []cases.State {
	var out []cases.State
	for _, s := range cases.States {
		if !slices.Contains(cases.OpenStates, s) {
			out = append(out, s)
		}
	}
	return out
}

// status maps a case state to open or closed.
func status(state string) string {
	if slices.Contains(cases.OpenStates, cases.State(state)) {
		return "open"
	}
	return "closed"
}

// StateNames are the Chinese names of case states, as status_notes shows
// them.
var StateNames = map[cases.State]string{
	cases.StateReceived:   "已受理",
	cases.StateDispatched: "已派单",
	cases.StateInProgress: "处置中",
	cases.StateReturned:   "已退单，待重新派单",
	cases.StateAnswered:   "已答复",
	cases.StateRated:      "已评价",
	cases.StateClosed:     "已办结",
}

var ratingNames = map[cases.Rating]string{
	cases.Satisfied: "满意", cases.BasicallySatisfied: "基本满意", cases.NotSatisfied: "不满意",
}

// request shows a case as a service request: no phone, no complainant.
func (s *Server) request(c store.Open311Case) request {
	notes := StateNames[cases.State(c.State)]
	switch {
	case c.MergedInto != "":
		notes += "（与同一问题的其他工单合并办理）"
	case c.Answer != "" && status(c.State) == "closed":
		notes += "：" + c.Answer
	}
	// A rating belongs to the answer it rated: shown once rated, not on a
	// case reopened and answered again.
	if r, ok := ratingNames[cases.Rating(c.Rating)]; ok && (c.State == string(cases.StateRated) || c.State == string(cases.StateClosed)) {
		notes += "（评价：" + r + "）"
	}
	si := services[protocol.FeedbackCategory(c.Category)]
	agency, address := "", ""
	if n := s.cfg.Tree.Node(c.Community); n != nil {
		address = n.Name
		if n.Station != nil {
			agency = n.Station.Name
		}
	}
	for _, part := range []struct{ v, suffix string }{{c.Building, ""}, {c.Unit, "单元"}, {c.Room, "室"}} {
		if part.v != "" {
			address += " " + part.v
			if !strings.HasSuffix(part.v, part.suffix) {
				address += part.suffix
			}
		}
	}
	return request{
		ID: c.Ticket, Status: status(c.State), StatusNotes: notes, ServiceName: si.name, ServiceCode: c.Category,
		Description: c.Description, AgencyResponsible: agency, ServiceNotice: s.notice(c.Category),
		RequestedDatetime: w3(c.ReportedAt), UpdatedDatetime: w3(c.UpdatedAt), ExpectedDatetime: w3(c.DueAt),
		Address: strings.TrimSpace(address), AddressID: c.Community,
	}
}

// publicStep is the public wording of one timeline step: fixed text per
// action (no staff names, no internal notes), the answer itself for an
// answer, the rating for a rating.
func publicStep(e store.CaseEvent) string {
	switch cases.Action(e.Action) {
	case cases.ActionCreate:
		return "已受理"
	case cases.ActionDispatch:
		return "已派单至执法队员"
	case cases.ActionAccept:
		return "执法队员已签收，处置中"
	case cases.ActionReturn:
		return "已退单，待重新派单"
	case cases.ActionReassign:
		return "已改派"
	case cases.ActionRejectReturn:
		return "退单未获批准，继续处置"
	case cases.ActionSendBack:
		return "退回待派单"
	case cases.ActionAnswer:
		return "已答复：" + e.Note
	case cases.ActionRate:
		// The note starts with the rating ("评价：满意" or "评价 satisfied");
		// the complainant's own words after it stay private.
		seg, _, _ := strings.Cut(e.Note, "；")
		for _, r := range []cases.Rating{cases.NotSatisfied, cases.BasicallySatisfied, cases.Satisfied} {
			if strings.Contains(seg, ratingNames[r]) || strings.Contains(seg, string(r)) {
				return "已评价：" + ratingNames[r]
			}
		}
		return "已评价"
	case cases.ActionReopen:
		return "重新处置"
	case cases.ActionClose:
		if e.From == string(cases.StateReceived) {
			return "不予受理，已办结"
		}
		return "已办结"
	case cases.ActionSupervise:
		return "已列入督办"
	case cases.ActionEscalate:
		return "超期，已提级督办"
	case cases.ActionMerge:
		return "已与同一问题的其他工单合并办理"
	case cases.ActionMergeIn:
		return "同一问题的其他工单已并入本工单"
	}
	return "办理进展更新"
}
