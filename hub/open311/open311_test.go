package open311

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/internal/audittest"
	"github.com/shequ/shequ/hub/store"
)

// XML forms of the replies, with the specification's element names.
type (
	xDiscovery struct {
		XMLName    xml.Name `xml:"discovery"`
		Changeset  string   `xml:"changeset"`
		Contact    string   `xml:"contact"`
		KeyService string   `xml:"key_service"`
		Endpoints  []struct {
			Specification string   `xml:"specification"`
			URL           string   `xml:"url"`
			Type          string   `xml:"type"`
			Formats       []string `xml:"formats>format"`
		} `xml:"endpoints>endpoint"`
	}
	xServices struct {
		XMLName  xml.Name `xml:"services"`
		Services []struct {
			Code     string `xml:"service_code"`
			Name     string `xml:"service_name"`
			Metadata bool   `xml:"metadata"`
			Type     string `xml:"type"`
			Group    string `xml:"group"`
		} `xml:"service"`
	}
	xDefinition struct {
		XMLName    xml.Name `xml:"service_definition"`
		Code       string   `xml:"service_code"`
		Attributes []struct {
			Code     string `xml:"code"`
			Datatype string `xml:"datatype"`
			Required bool   `xml:"required"`
			Order    int    `xml:"order"`
			Values   []struct {
				Key  string `xml:"key"`
				Name string `xml:"name"`
			} `xml:"values>value"`
		} `xml:"attributes>attribute"`
	}
	xRequests struct {
		XMLName  xml.Name `xml:"service_requests"`
		Requests []struct {
			ID          string `xml:"service_request_id"`
			Token       string `xml:"token"`
			Notice      string `xml:"service_notice"`
			Status      string `xml:"status"`
			StatusNotes string `xml:"status_notes"`
			Code        string `xml:"service_code"`
			Requested   string `xml:"requested_datetime"`
		} `xml:"request"`
	}
	xUpdates struct {
		XMLName xml.Name `xml:"service_request_updates"`
		Updates []struct {
			UpdateID    string `xml:"update_id"`
			ID          string `xml:"service_request_id"`
			Status      string `xml:"status"`
			Updated     string `xml:"updated_datetime"`
			Description string `xml:"description"`
		} `xml:"request_update"`
	}
	xErrors struct {
		XMLName xml.Name `xml:"errors"`
		Errors  []struct {
			Code        int    `xml:"code"`
			Description string `xml:"description"`
		} `xml:"error"`
	}
)

var (
	requestFields = []string{"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
		"agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime", "address", "address_id"}
	xmlAllowed = map[string][]string{
		"discovery": append(under("discovery", "changeset", "contact", "key_service", "endpoints", "endpoints/endpoint"),
			under("discovery/endpoints/endpoint", "specification", "url", "changeset", "type", "formats", "formats/format")[1:]...),
		"services": append(under("services", "service"),
			under("services/service", "service_code", "service_name", "description", "metadata", "type", "keywords", "group")[1:]...),
		"service_definition": append(under("service_definition", "service_code", "attributes", "attributes/attribute"),
			under("service_definition/attributes/attribute", "variable", "code", "datatype", "required", "datatype_description",
				"order", "description", "values", "values/value", "values/value/key", "values/value/name")[1:]...),
		"post_response": append(under("service_requests", "request"),
			under("service_requests/request", "service_request_id", "service_notice")[1:]...),
		"token": append(under("service_requests", "request"),
			under("service_requests/request", "service_request_id", "token")[1:]...),
		"requests": append(under("service_requests", "request"), under("service_requests/request", requestFields...)[1:]...),
		"updates": append(under("service_request_updates", "request_update"),
			under("service_request_updates/request_update", "update_id", "service_request_id", "status", "updated_datetime", "description")[1:]...),
		"errors": under("errors", "error", "error/code", "error/description"),
	}
)

// fileForm is a valid request to file an illegal construction case.
func fileForm(apiKey string) url.Values {
	return url.Values{
		"api_key": {apiKey}, "service_code": {"illegal_construction"}, "address_id": {"sangcheng"},
		"attribute[kind]": {"complaint"}, "attribute[building]": {"3号"}, "attribute[unit]": {"2"}, "attribute[room]": {"501"},
		"attribute[ongoing]": {"yes"}, "description": {"楼顶在加盖彩钢板房"}, "phone": {"138-0013-8000"},
		"first_name": {"三"}, "last_name": {"张"}, "email": {"zhang@example.com"}, "lat": {"31.2001"}, "long": {"121.4902"},
	}
}

func decodeJSON[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

// TestEndpoints calls every endpoint in both formats and checks the JSON
// against the schemas written from the specification and the XML for the
// specification's element names (and no others).
func TestEndpoints(t *testing.T) {
	f := newFixture(t, Config{BaseURL: func() string { return "https://hub.example:8080/" }})
	kc := f.addKey("12345 热线平台", "hotline", "huangpu")
	r := f.do(http.MethodPost, Base+"requests.json", nil, fileForm(kc.APIKey), nil)
	if r.code != http.StatusOK {
		t.Fatalf("POST requests: %d %s", r.code, r.body)
	}
	ticket := decodeJSON[[]created](t, r)[0].ID
	c, err := f.st.CaseByTicket(context.Background(), ticket)
	if err != nil {
		t.Fatal(err)
	}
	key := url.Values{"api_key": {kc.APIKey}}
	with := func(extra url.Values) url.Values {
		v := url.Values{"api_key": {kc.APIKey}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}

	tests := []struct {
		name, method, path string
		query, form        url.Values
		schema             string
		xmlInto            any
		check              func(t *testing.T, format string, r reply)
	}{
		{name: "discovery", method: "GET", path: "discovery", schema: "discovery", xmlInto: &xDiscovery{},
			check: func(t *testing.T, format string, r reply) {
				if !bytes.Contains(r.body, []byte("https://hub.example:8080/open311/v2")) {
					t.Errorf("endpoint url missing: %s", r.body)
				}
			}},
		{name: "services", method: "GET", path: "services", schema: "services", xmlInto: &xServices{},
			check: func(t *testing.T, format string, r reply) {
				if format == formatJSON {
					l := decodeJSON[[]service](t, r)
					if len(l) != 8 || l[0].Code != "illegal_construction" || l[0].Name != "违法搭建" || l[0].Type != "realtime" {
						t.Errorf("services: %+v", l)
					}
				}
			}},
		{name: "services in the root jurisdiction", method: "GET", path: "services", query: url.Values{"jurisdiction_id": {"shanghai"}},
			schema: "services", xmlInto: &xServices{}},
		{name: "services in a key's jurisdiction", method: "GET", path: "services",
			query: with(url.Values{"jurisdiction_id": {"huangpu"}}), schema: "services", xmlInto: &xServices{}},
		{name: "service definition", method: "GET", path: "services/load_bearing", schema: "service_definition",
			xmlInto: &xDefinition{}, check: func(t *testing.T, format string, r reply) {
				if format != formatXML {
					return
				}
				var d xDefinition
				if err := xml.Unmarshal(r.body, &d); err != nil {
					t.Fatal(err)
				}
				codes := map[string]bool{}
				for _, a := range d.Attributes {
					codes[a.Code] = a.Required
				}
				if !codes["kind"] || !codes["danger_now"] || codes["building"] || d.Code != "load_bearing" {
					t.Errorf("attributes (code → required): %v", codes)
				}
			}},
		{name: "post request", method: "POST", path: "requests",
			form: func() url.Values {
				v := fileForm(kc.APIKey)
				v.Set("attribute[external_id]", "HL-2026-0001")
				return v
			}(), schema: "post_response", xmlInto: &xRequests{}},
		{name: "token", method: "GET", path: "tokens/" + c.ID, query: key, schema: "token", xmlInto: &xRequests{},
			check: func(t *testing.T, format string, r reply) {
				if !bytes.Contains(r.body, []byte(ticket)) {
					t.Errorf("token reply lacks the ticket: %s", r.body)
				}
			}},
		{name: "requests", method: "GET", path: "requests", query: key, schema: "requests", xmlInto: &xRequests{},
			check: func(t *testing.T, format string, r reply) {
				if format == formatJSON && len(decodeJSON[[]request](t, r)) != 2 {
					t.Errorf("want 2 requests: %s", r.body)
				}
			}},
		{name: "requests filtered", method: "GET", path: "requests", query: with(url.Values{
			"service_code": {"illegal_construction,facade"}, "status": {"open"}, "jurisdiction_id": {"huangpu"},
			"start_date": {"2026-10-01T00:00:00+08:00"}, "end_date": {"2026-11-30T00:00:00Z"}}),
			schema: "requests", xmlInto: &xRequests{}},
		{name: "requests by id", method: "GET", path: "requests", query: with(url.Values{"service_request_id": {ticket + ",NO-SUCH"}}),
			schema: "requests", xmlInto: &xRequests{}, check: func(t *testing.T, format string, r reply) {
				if format == formatJSON && len(decodeJSON[[]request](t, r)) != 1 {
					t.Errorf("want 1 request: %s", r.body)
				}
			}},
		{name: "request", method: "GET", path: "requests/" + ticket, query: key, schema: "requests", xmlInto: &xRequests{}},
		{name: "updates", method: "GET", path: "servicerequestupdates", query: key, schema: "updates", xmlInto: &xUpdates{}},
		{name: "updates of one request", method: "GET", path: "servicerequestupdates",
			query:  with(url.Values{"service_request_id": {ticket}, "start_date": {"2026-11-01T00:00:00+08:00"}}),
			schema: "updates", xmlInto: &xUpdates{}},
	}
	for _, tt := range tests {
		for _, format := range []string{formatJSON, formatXML} {
			t.Run(tt.name+"."+format, func(t *testing.T) {
				r := f.do(tt.method, Base+tt.path+"."+format, tt.query, tt.form, nil)
				if r.code != http.StatusOK {
					t.Fatalf("status %d: %s", r.code, r.body)
				}
				for _, secret := range []string{"13800138000", "138-0013-8000", "zhang@example.com", "张"} {
					if bytes.Contains(r.body, []byte(secret)) {
						t.Errorf("reply shows contact data %q: %s", secret, r.body)
					}
				}
				if format == formatJSON {
					validJSON(t, tt.schema, r)
				} else {
					checkXML(t, r, xmlAllowed[tt.schema], tt.xmlInto)
				}
				if tt.check != nil {
					tt.check(t, format, r)
				}
			})
		}
	}
}

// TestErrors checks the specification's error cases, in its list format
// and with its status codes, in both formats.
func TestErrors(t *testing.T) {
	f := newFixture(t, Config{PerMinute: 10000, Burst: 10000})
	kc := f.addKey("物业公司", "partner", "sangcheng")
	revoked := f.addKey("旧系统", "partner", "sangcheng")
	if _, err := f.srv.RevokeKey(context.Background(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	form := func(change func(url.Values)) url.Values {
		v := fileForm(kc.APIKey)
		change(v)
		return v
	}
	q := func(kv ...string) url.Values {
		v := url.Values{"api_key": {kc.APIKey}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name, method, path string
		query, form        url.Values
		code               int
		want               string // in the first error's description
	}{
		{"missing api_key", "POST", "requests", nil, form(func(v url.Values) { v.Del("api_key") }), 403, "api_key missing or invalid"},
		{"invalid api_key", "POST", "requests", nil, form(func(v url.Values) { v.Set("api_key", "o311_wrong") }), 403, "api_key missing or invalid"},
		{"revoked api_key", "GET", "requests", url.Values{"api_key": {revoked.APIKey}}, nil, 403, "api_key missing or invalid"},
		{"missing api_key on GET requests", "GET", "requests", nil, nil, 403, "api_key missing or invalid"},
		{"unknown service_code", "POST", "requests", nil, form(func(v url.Values) { v.Set("service_code", "potholes") }), 404, "service_code not found"},
		{"missing service_code", "POST", "requests", nil, form(func(v url.Values) { v.Del("service_code") }), 400, "service_code is required"},
		{"unknown service definition", "GET", "services/potholes", nil, nil, 404, "service_code not found"},
		{"missing required attribute", "POST", "requests", nil, form(func(v url.Values) { v.Del("attribute[kind]") }), 400, "attribute[kind] is required"},
		{"missing category attribute", "POST", "requests", nil, form(func(v url.Values) {
			v.Set("service_code", "load_bearing")
			v.Del("attribute[ongoing]")
		}), 400, "attribute[danger_now] is required"},
		{"attribute not in list", "POST", "requests", nil, form(func(v url.Values) { v.Set("attribute[kind]", "praise") }), 400, "attribute[kind] must be one of"},
		{"unknown attribute", "POST", "requests", nil, form(func(v url.Values) { v.Set("attribute[colour]", "red") }), 400, "attribute[colour] is not an attribute"},
		{"missing address_id", "POST", "requests", nil, form(func(v url.Values) { v.Del("address_id") }), 400, "address_id is required"},
		{"address outside the key", "POST", "requests", nil, form(func(v url.Values) { v.Set("address_id", "ruiyi") }), 400, "outside the key's jurisdiction"},
		{"half a coordinate", "POST", "requests", nil, form(func(v url.Values) { v.Del("long") }), 400, "lat and long"},
		{"bad phone", "POST", "requests", nil, form(func(v url.Values) { v.Set("phone", "call me") }), 400, "phone"},
		{"unknown parameter", "POST", "requests", nil, form(func(v url.Values) { v.Set("priority", "high") }), 400, "unknown parameter"},
		{"unknown jurisdiction on POST", "POST", "requests", nil, form(func(v url.Values) { v.Set("jurisdiction_id", "sfgov.org") }), 404, "jurisdiction_id not found"},
		{"unknown jurisdiction on services", "GET", "services", url.Values{"jurisdiction_id": {"sfgov.org"}}, nil, 404, "jurisdiction_id not found"},
		{"node outside the key as jurisdiction", "GET", "requests", q("jurisdiction_id", "ruiyi"), nil, 404, "jurisdiction_id not found"},
		{"range over 90 days", "GET", "requests", q("start_date", "2026-01-01T00:00:00+08:00", "end_date", "2026-06-01T00:00:00+08:00"), nil, 400, "at most 90 days"},
		{"end before start", "GET", "requests", q("start_date", "2026-11-02T00:00:00+08:00", "end_date", "2026-11-01T00:00:00+08:00"), nil, 400, "end_date is before start_date"},
		{"malformed date", "GET", "requests", q("start_date", "2026-11-02"), nil, 400, "start_date must be a W3C date-time"},
		{"date without zone", "GET", "servicerequestupdates", q("end_date", "2026-11-02T09:00:00"), nil, 400, "end_date must be"},
		{"updates over 90 days", "GET", "servicerequestupdates", q("start_date", "2026-01-01T00:00:00Z", "end_date", "2026-11-01T00:00:00Z"), nil, 400, "at most 90 days"},
		{"bad status", "GET", "requests", q("status", "pending"), nil, 400, "status must be"},
		{"unknown request", "GET", "requests/260101-HL-NOSUCHCASE", q(), nil, 404, "service_request_id not found"},
		{"unknown token", "GET", "tokens/nope", q(), nil, 404, "token not found"},
		{"unknown resource", "GET", "potholes", nil, nil, 404, "not found"},
		{"wrong method", "DELETE", "requests", nil, nil, 405, "not allowed"},
	}
	for _, tt := range tests {
		for _, format := range []string{formatJSON, formatXML} {
			t.Run(tt.name+"."+format, func(t *testing.T) {
				r := f.do(tt.method, Base+tt.path+"."+format, tt.query, tt.form, nil)
				if r.code != tt.code {
					t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
				}
				var first string
				if format == formatJSON {
					validJSON(t, "errors", r)
					es := decodeJSON[[]apiError](t, r)
					if es[0].Code != tt.code {
						t.Errorf("error code %d, want %d", es[0].Code, tt.code)
					}
					first = es[0].Description
				} else {
					var es xErrors
					checkXML(t, r, xmlAllowed["errors"], &es)
					if len(es.Errors) == 0 || es.Errors[0].Code != tt.code {
						t.Fatalf("errors: %+v", es)
					}
					first = es.Errors[0].Description
				}
				if !strings.Contains(first, tt.want) {
					t.Errorf("error %q, want it to contain %q", first, tt.want)
				}
			})
		}
	}

	t.Run("unknown format", func(t *testing.T) {
		for _, p := range []string{"services.csv", "requests.html", "discovery"} {
			r := f.do("GET", Base+p, nil, nil, nil)
			if r.code != http.StatusNotFound {
				t.Errorf("%s: status %d", p, r.code)
			}
			checkXML(t, r, xmlAllowed["errors"], &xErrors{})
		}
	})
	t.Run("several errors at once", func(t *testing.T) {
		r := f.do("POST", Base+"requests.json", nil, form(func(v url.Values) {
			v.Del("attribute[kind]")
			v.Del("address_id")
		}), nil)
		if es := decodeJSON[[]apiError](t, r); r.code != 400 || len(es) != 2 {
			t.Errorf("status %d, errors %+v", r.code, es)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		r := f.do("POST", Base+"requests.json", nil, fileForm(kc.APIKey), http.Header{"Content-Type": {"application/json"}})
		if r.code != http.StatusBadRequest {
			t.Errorf("status %d: %s", r.code, r.body)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		v := fileForm(kc.APIKey)
		v.Set("description", strings.Repeat("很", MaxBody/3))
		r := f.do("POST", Base+"requests.json", nil, v, nil)
		if r.code != http.StatusRequestEntityTooLarge && r.code != http.StatusBadRequest {
			t.Errorf("status %d: %s", r.code, r.body)
		}
		validJSON(t, "errors", r)
	})
}

// TestCaseLoop files a case through Open311 and follows it through the
// workflow: the key's source, status and status_notes, the timeline in
// servicerequestupdates, idempotent filing, and scoping to the key.
func TestCaseLoop(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	hotline := f.addKey("12345 热线平台", "hotline", "wuliqiao")
	other := f.addKey("瑞一物业", "partner", "ruiyi", "sangcheng")

	form := fileForm(hotline.APIKey)
	form.Set("attribute[external_id]", "HL-0001")
	first := f.do("POST", Base+"requests.json", nil, form, nil)
	again := f.do("POST", Base+"requests.xml", nil, form, nil)
	if first.code != 200 || again.code != 200 {
		t.Fatalf("POST: %d %s / %d %s", first.code, first.body, again.code, again.body)
	}
	ticket := decodeJSON[[]created](t, first)[0].ID
	var x xRequests
	if err := xml.Unmarshal(again.body, &x); err != nil || len(x.Requests) != 1 || x.Requests[0].ID != ticket {
		t.Fatalf("repeated POST: %v %s, want ticket %s", err, again.body, ticket)
	}
	c, err := f.st.CaseByTicket(ctx, ticket)
	if err != nil {
		t.Fatal(err)
	}
	all, err := f.st.ListCases(ctx, store.CaseFilter{})
	if err != nil || len(all) != 1 {
		t.Fatalf("cases: %d, %v; want exactly one", len(all), err)
	}
	if c.Source != "hotline" || c.Community != "sangcheng" || c.Kind != "complaint" || c.Building != "3号" ||
		c.Phone != "13800138000" || !strings.Contains(c.Description, "【正在施工】") || !strings.Contains(c.Description, "121.4902") ||
		strings.Contains(c.Description, "zhang@example.com") {
		t.Errorf("stored case: %+v", c)
	}
	if !strings.HasPrefix(c.SourceRef, hotline.Key.ID+"/") {
		t.Errorf("source ref %q", c.SourceRef)
	}

	leader := actor{"leader-wang", cases.RoleSquadLeader, "wuliqiao", f.tree}
	officer := actor{"officer-zhou", cases.RoleOfficer, "wuliqiao", f.tree}
	resident := actor{"resident", cases.RoleResident, "shanghai", f.tree}
	get := func(t *testing.T) request {
		t.Helper()
		r := f.do("GET", Base+"requests/"+ticket+".json", url.Values{"api_key": {hotline.APIKey}}, nil, nil)
		if r.code != 200 {
			t.Fatalf("GET request: %d %s", r.code, r.body)
		}
		validJSON(t, "requests", r)
		return decodeJSON[[]request](t, r)[0]
	}
	steps := []struct {
		name       string
		act        func() error
		status     string
		notes      string
		lastUpdate string
	}{
		{"received", func() error { return nil }, "open", "已受理", "已受理"},
		{"dispatched", func() error {
			_, err := f.cases.Dispatch(ctx, c.ID, leader, officer.id, "请尽快核查")
			return err
		}, "open", "已派单", "已派单至执法队员"},
		{"accepted", func() error {
			_, err := f.cases.Apply(ctx, c.ID, cases.ActionAccept, officer, "")
			return err
		}, "open", "处置中", "执法队员已签收，处置中"},
		{"answered", func() error {
			_, err := f.cases.Apply(ctx, c.ID, cases.ActionAnswer, officer, "已责令当事人限期拆除，彩钢板房已拆除。")
			return err
		}, "closed", "已答复：已责令当事人限期拆除，彩钢板房已拆除。", "已答复：已责令当事人限期拆除，彩钢板房已拆除。"},
		{"rated", func() error {
			_, err := f.cases.Rate(ctx, c.ID, resident, cases.Satisfied, "")
			return err
		}, "closed", "已评价：已责令当事人限期拆除，彩钢板房已拆除。（评价：满意）", "已评价：满意"},
		{"closed", func() error {
			_, err := f.cases.Apply(ctx, c.ID, cases.ActionClose, leader, "")
			return err
		}, "closed", "已办结：已责令当事人限期拆除，彩钢板房已拆除。（评价：满意）", "已办结"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			f.clock.Add(time.Hour)
			if err := st.act(); err != nil {
				t.Fatal(err)
			}
			got := get(t)
			if got.Status != st.status || got.StatusNotes != st.notes {
				t.Errorf("status %q notes %q, want %q %q", got.Status, got.StatusNotes, st.status, st.notes)
			}
			if got.UpdatedDatetime != w3(f.clock.Now()) && i > 0 {
				t.Errorf("updated %s, want %s", got.UpdatedDatetime, w3(f.clock.Now()))
			}
			if i >= 1 && got.ExpectedDatetime == "" {
				t.Error("no expected_datetime once dispatched")
			}
			r := f.do("GET", Base+"servicerequestupdates.json", url.Values{"api_key": {hotline.APIKey}}, nil, nil)
			validJSON(t, "updates", r)
			ups := decodeJSON[[]update](t, r)
			if len(ups) != i+1 {
				t.Fatalf("%d updates, want %d: %s", len(ups), i+1, r.body)
			}
			last := ups[len(ups)-1]
			if last.Description != st.lastUpdate || last.Status != st.status || last.ServiceRequestID != ticket {
				t.Errorf("last update %+v, want %q (%s)", last, st.lastUpdate, st.status)
			}
			for _, staff := range []string{leader.id, officer.id, "请尽快核查", "13800138000"} {
				if bytes.Contains(r.body, []byte(staff)) {
					t.Errorf("updates show %q: %s", staff, r.body)
				}
			}
		})
	}

	t.Run("status filter", func(t *testing.T) {
		for status, want := range map[string]int{"open": 0, "closed": 1, "open,closed": 1} {
			r := f.do("GET", Base+"requests.json", url.Values{"api_key": {hotline.APIKey}, "status": {status}}, nil, nil)
			if n := len(decodeJSON[[]request](t, r)); n != want {
				t.Errorf("status=%s: %d requests, want %d", status, n, want)
			}
		}
	})
	t.Run("other keys see nothing", func(t *testing.T) {
		// The other key may see sangcheng but did not file the case.
		q := url.Values{"api_key": {other.APIKey}}
		if r := f.do("GET", Base+"requests/"+ticket+".json", q, nil, nil); r.code != http.StatusNotFound {
			t.Errorf("GET request: %d %s", r.code, r.body)
		}
		if r := f.do("GET", Base+"requests.json", q, nil, nil); string(bytes.TrimSpace(r.body)) != "[]" {
			t.Errorf("GET requests: %s", r.body)
		}
		if r := f.do("GET", Base+"servicerequestupdates.json", q, nil, nil); string(bytes.TrimSpace(r.body)) != "[]" {
			t.Errorf("GET updates: %s", r.body)
		}
		if r := f.do("GET", Base+"tokens/"+c.ID+".json", q, nil, nil); r.code != http.StatusNotFound {
			t.Errorf("GET token: %d", r.code)
		}
	})
	t.Run("a kiosk id stands for its community", func(t *testing.T) {
		v := fileForm(other.APIKey)
		v.Set("address_id", "k-ruiyi-01")
		r := f.do("POST", Base+"requests.json", nil, v, nil)
		if r.code != 200 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		got, err := f.st.CaseByTicket(ctx, decodeJSON[[]created](t, r)[0].ID)
		if err != nil || got.Community != "ruiyi" || got.Source != "partner" || got.Kiosk != "" {
			t.Errorf("case %+v, %v", got, err)
		}
	})
}

// TestRateLimit checks the per-key limit.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, Config{PerMinute: 1, Burst: 2})
	kc := f.addKey("p", "partner", "sangcheng")
	q := url.Values{"api_key": {kc.APIKey}}
	var codes []int
	for range 3 {
		codes = append(codes, f.do("GET", Base+"requests.json", q, nil, nil).code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Errorf("codes %v, want 200 200 429", codes)
	}
	f.clock.Add(time.Minute)
	if r := f.do("GET", Base+"requests.json", q, nil, nil); r.code != 200 {
		t.Errorf("after a minute: %d", r.code)
	}
	// Wrong keys count against the client's address.
	codes = nil
	for range 3 {
		codes = append(codes, f.do("GET", Base+"requests.json", url.Values{"api_key": {"o311_guess"}}, nil, nil).code)
	}
	if codes[0] != 403 || codes[1] != 403 || codes[2] != http.StatusTooManyRequests {
		t.Errorf("codes with a wrong key %v, want 403 403 429", codes)
	}
}

// TestAdmin checks the key endpoints behind the admin token.
// TestAdmin: keys are issued, listed and revoked through the admin
// endpoints; issuing and revoking are in the audit log with the admin
// token as actor and never with the key, refused requests and a repeated
// revocation write nothing.
func TestAdmin(t *testing.T) {
	var audit func(ctx context.Context, action, object string, before, after any) // set once the fixture opened its store, before any request
	f := newFixture(t, Config{Audit: func(ctx context.Context, action, object string, before, after any) {
		audit(ctx, action, object, before, after)
	}})
	st := f.st
	audit = audittest.Func(t, st, f.tree)
	audited := func() []store.AuditRecord {
		t.Helper()
		rs, err := st.AuditLog(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	auth := http.Header{"Authorization": {"Bearer " + adminToken}}
	post := func(path, body string, h http.Header) reply {
		req, err := http.NewRequest("POST", f.ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h.Clone()
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		return reply{code: resp.StatusCode, body: buf.Bytes()}
	}
	tests := []struct {
		name string
		body string
		h    http.Header
		code int
	}{
		{"no token", `{"name":"x","nodes":["huangpu"]}`, http.Header{}, 401},
		{"ok", `{"name":"12345","nodes":["huangpu","wuliqiao"],"source":"hotline"}`, auth, 201},
		{"unknown node", `{"name":"x","nodes":["nowhere"]}`, auth, 400},
		{"kiosk node", `{"name":"x","nodes":["k-ruiyi-01"]}`, auth, 400},
		{"bad source", `{"name":"x","nodes":["huangpu"],"source":"kiosk"}`, auth, 400},
		{"no name", `{"name":" ","nodes":["huangpu"]}`, auth, 400},
		{"unknown field", `{"name":"x","nodes":["huangpu"],"admin":true}`, auth, 400},
	}
	var created KeyCreated
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post("/api/v1/open311/keys", tt.body, tt.h)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if r.code == 201 {
				created = decodeJSON[KeyCreated](t, r)
			}
			want := 0 // one entry once the key is issued
			if created.Key.ID != "" {
				want = 1
			}
			if n := len(audited()); n != want {
				t.Errorf("%d audit entries, want %d", n, want)
			}
		})
	}
	if !strings.HasPrefix(created.APIKey, KeyPrefix) || len(created.APIKey) != len(KeyPrefix)+43 || created.Key.Source != "hotline" {
		t.Fatalf("created %+v", created)
	}
	list := f.do("GET", "/api/v1/open311/keys", nil, nil, auth)
	if list.code != 200 || bytes.Contains(list.body, []byte(created.APIKey)) || !bytes.Contains(list.body, []byte(created.Key.ID)) {
		t.Errorf("list: %d %s", list.code, list.body)
	}
	q := url.Values{"api_key": {created.APIKey}}
	if r := f.do("GET", Base+"requests.json", q, nil, nil); r.code != 200 {
		t.Fatalf("key does not work: %d", r.code)
	}
	for range 2 { // idempotent
		if r := post("/api/v1/open311/keys/"+created.Key.ID+"/revoke", "", auth); r.code != 200 || decodeJSON[Key](t, r).RevokedAt.IsZero() {
			t.Errorf("revoke: %d %s", r.code, r.body)
		}
	}
	if r := post("/api/v1/open311/keys/nope/revoke", "", auth); r.code != 404 {
		t.Errorf("revoke unknown: %d", r.code)
	}
	if r := f.do("GET", Base+"requests.json", q, nil, nil); r.code != 403 {
		t.Errorf("revoked key works: %d", r.code)
	}
	e := audited() // newest first
	if len(e) != 2 {
		t.Fatalf("audit log %+v, want the key's create and revoke", e)
	}
	for i, w := range []struct {
		action string
		before bool // a before state without revoked_at
		after  string
	}{
		{"open311_key.revoke", true, `"revoked_at"`},
		{"open311_key.create", false, `"name":"12345"`},
	} {
		if e[i].Action != w.action || e[i].Actor != api.AdminActor || e[i].Object != "open311_key:"+created.Key.ID {
			t.Errorf("entry %d = %s by %s on %s, want %s by %s on open311_key:%s", i, e[i].Action, e[i].Actor, e[i].Object,
				w.action, api.AdminActor, created.Key.ID)
		}
		if w.before != (e[i].Before != "") || strings.Contains(e[i].Before, `"revoked_at"`) ||
			!strings.Contains(e[i].After, w.after) {
			t.Errorf("entry %d: before %s after %s", i, e[i].Before, e[i].After)
		}
		all := e[i].Before + e[i].After + e[i].Actor
		secret := strings.TrimPrefix(created.APIKey, KeyPrefix)
		if strings.Contains(all, secret) || strings.Contains(all, adminToken) {
			t.Errorf("entry %d holds the API key or the admin token: %s", i, all)
		}
	}
}
