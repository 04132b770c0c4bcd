package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"html"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// multipartBody encodes fields and files (field name → file name → data)
// as multipart/form-data.
func multipartBody(t testing.TB, fields map[string]string, files map[string]map[string][]byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for field, fs := range files {
		for name, data := range fs {
			fw, err := w.CreateFormFile(field, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fw.Write(data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// postMultipart posts a multipart form with the user's CSRF token.
func (c *client) postMultipart(path string, fields map[string]string, files map[string]map[string][]byte) response {
	c.f.t.Helper()
	all := map[string]string{"csrf": c.csrf()}
	for k, v := range fields {
		all[k] = v
	}
	body, ct := multipartBody(c.f.t, all, files)
	req, err := http.NewRequest(http.MethodPost, c.f.srv.URL+path, body)
	if err != nil {
		c.f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Origin", c.f.srv.URL)
	return c.do(req)
}

// gpsExif returns a JPEG APP1 segment with a big-endian TIFF whose first
// IFD points to a GPS IFD holding a latitude and the marker "SECRET-GPS".
func gpsExif() []byte {
	be := binary.BigEndian
	t := []byte("MM\x00\x2a\x00\x00\x00\x08")
	t = be.AppendUint16(t, 1)                   // IFD0: one entry
	t = append(t, 0x88, 0x25, 0, 4, 0, 0, 0, 1) // GPS IFD pointer, LONG, 1
	gpsOff := 8 + 2 + 12 + 4
	t = be.AppendUint32(t, uint32(gpsOff))
	t = be.AppendUint32(t, 0) // no next IFD
	method := []byte("ASCII\x00\x00\x00SECRET-GPS")
	dataOff := gpsOff + 2 + 3*12 + 4
	t = be.AppendUint16(t, 3)
	t = append(t, 0, 1, 0, 2, 0, 0, 0, 2, 'N', 0, 0, 0) // GPSLatitudeRef "N"
	t = append(t, 0, 2, 0, 5, 0, 0, 0, 3)               // GPSLatitude, 3 RATIONAL
	t = be.AppendUint32(t, uint32(dataOff))
	t = append(t, 0, 0x1B, 0, 7) // GPSProcessingMethod, UNDEFINED
	t = be.AppendUint32(t, uint32(len(method)))
	t = be.AppendUint32(t, uint32(dataOff+24))
	t = be.AppendUint32(t, 0)
	for _, v := range []uint32{31, 1, 13, 1, 3600, 100} {
		t = be.AppendUint32(t, v)
	}
	t = append(t, method...)
	payload := append([]byte("Exif\x00\x00"), t...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	be.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// gpsJPEG returns a w×h JPEG carrying gpsExif right after its SOI.
func gpsJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	out := append([]byte{}, b[:2]...)
	out = append(out, gpsExif()...)
	return append(out, b[2:]...)
}

var photoLink = regexp.MustCompile(`/cases/([a-z0-9-]+)/photos/([0-9a-f]{64})`)

func TestWorkPhoto(t *testing.T) {
	f, pc := setupPermissions(t)
	id := pc.sangcheng.ID
	pic := gpsJPEG(t, 2400, 1800)
	if !bytes.Contains(pic, []byte("Exif")) || !bytes.Contains(pic, []byte("SECRET-GPS")) {
		t.Fatal("the test photo carries no EXIF")
	}
	if _, err := jpeg.DecodeConfig(bytes.NewReader(pic)); err != nil {
		t.Fatalf("the test photo is not a JPEG: %v", err)
	}
	officer := f.login("officer-a")
	res := officer.postMultipart("/cases/"+id+"/work", map[string]string{"note": "现场查看，已拍照", "back": "/m/cases/" + id},
		map[string]map[string][]byte{"photos": {"site.jpg": pic}})
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/m/cases/"+id+"?ok=work.saved" {
		t.Fatalf("POST work: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	page := officer.get("/cases/" + id)
	m := photoLink.FindStringSubmatch(page.body)
	if m == nil || m[1] != id {
		t.Fatalf("the case page links no photo of the case")
	}
	if !strings.Contains(page.body, "现场查看，已拍照") {
		t.Error("the case page does not show the work note")
	}
	photoPath := m[0]
	got := officer.get(photoPath)
	if got.code != http.StatusOK || got.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET photo: %d %s", got.code, got.header.Get("Content-Type"))
	}
	cfg, err := jpeg.DecodeConfig(strings.NewReader(got.body))
	if err != nil {
		t.Fatalf("the stored photo is not a JPEG: %v", err)
	}
	if cfg.Width > 1600 || cfg.Height > 1600 || cfg.Width != 1600 {
		t.Errorf("stored photo %d×%d, want 1600 wide", cfg.Width, cfg.Height)
	}
	for _, s := range []string{"Exif", "SECRET-GPS"} {
		if strings.Contains(got.body, s) {
			t.Errorf("the stored photo still holds %q", s)
		}
	}
	t.Run("who may see it", func(t *testing.T) {
		for user, want := range map[string]int{"squad": 200, "huangpu": 200, "officer-b": 404, "xuhui": 404, "partner": 404, "tech": 403} {
			if res := f.login(user).get(photoPath); res.code != want {
				t.Errorf("%s: GET photo %d, want %d", user, res.code, want)
			}
		}
	})
	tests := []struct {
		name, user string
		files      map[string]map[string][]byte
		note       string
		want       int
	}{
		{"another officer", "officer-b", map[string]map[string][]byte{"photos": {"a.jpg": pic}}, "x", http.StatusNotFound},
		{"a partner", "partner", map[string]map[string][]byte{"photos": {"a.jpg": pic}}, "x", http.StatusForbidden},
		{"not an image", "officer-a", map[string]map[string][]byte{"photos": {"a.jpg": []byte("just text, not a photo")}}, "x", http.StatusBadRequest},
		{"nothing", "officer-a", nil, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := f.st.CaseWork(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			res := f.login(tt.user).postMultipart("/cases/"+id+"/work", map[string]string{"note": tt.note}, tt.files)
			if res.code != tt.want {
				t.Errorf("POST work: %d %s, want %d", res.code, errorText(res.body), tt.want)
			}
			if after, err := f.st.CaseWork(context.Background(), id); err != nil || len(after) != len(before) {
				t.Errorf("work records %d (%v), were %d", len(after), err, len(before))
			}
		})
	}
}

var checkinForm = regexp.MustCompile(`<input type="hidden" name="code" value="([^"]*)">`)

func TestCheckin(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	officer := f.login("officer-a")
	code := func(kiosk string, key ed25519.PrivateKey, at time.Time) string {
		slot := protocol.CheckinSlot(at)
		u, err := url.Parse(protocol.CheckinURL(f.srv.URL, kiosk, slot, protocol.SignCheckin(key, kiosk, slot)))
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != protocol.CheckinPath {
			t.Fatalf("check-in URL %s", u)
		}
		return u.RawQuery
	}
	count := func() int {
		cs, err := f.st.Checkins(context.Background(), store.CheckinFilter{Officer: f.accounts["officer-a"].ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	good := code("k-sangcheng-01", f.keys["k-sangcheng-01"], f.clock.Now())
	res := officer.get("/m/checkin?" + good)
	m := checkinForm.FindStringSubmatch(res.body)
	if res.code != http.StatusOK || m == nil {
		t.Fatalf("GET check-in: %d %s", res.code, errorText(res.body))
	}
	if count() != 0 {
		t.Fatal("GET recorded a check-in")
	}
	posted := html.UnescapeString(m[1])
	for i := range 2 {
		res := officer.submit("/m/checkin", url.Values{"code": {posted}, "kind": {"visit"}, "note": {"例行走访"}})
		if res.code != http.StatusOK || !strings.Contains(res.body, `id="checked-in"`) {
			t.Fatalf("POST check-in %d: %d %s", i+1, res.code, errorText(res.body))
		}
		if n := count(); n != 1 {
			t.Errorf("after post %d: %d check-ins, want 1", i+1, n)
		}
	}
	if res := officer.get("/m"); !strings.Contains(res.body, "桑城居委一楼大厅") {
		t.Error("the tasks page does not list the check-in")
	}
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := code("k-ruiyi-01", stranger, f.clock.Now())
	tampered := strings.Replace(code("k-ruiyi-01", f.keys["k-ruiyi-01"], f.clock.Now()), "k=k-ruiyi-01", "k=k-sangcheng-01", 1)
	tests := []struct {
		name, user, query string
	}{
		{"another district's kiosk", "officer-a", code("k-hengfu-01", f.keys["k-hengfu-01"], f.clock.Now())},
		{"forged signature", "officer-a", forged},
		{"signature of another kiosk", "officer-a", tampered},
		{"kiosk without a device", "officer-a", code("k-sangcheng-02", stranger, f.clock.Now())},
		{"unknown kiosk", "officer-a", code("k-nowhere", stranger, f.clock.Now())},
		{"extra parameter", "officer-a", good + "&x=1"},
		{"no code", "officer-a", ""},
		{"xuhui has no officers here", "squad", code("k-hengfu-01", f.keys["k-hengfu-01"], f.clock.Now())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.login(tt.user)
			before := count()
			if res := c.get("/m/checkin?" + tt.query); res.code != http.StatusBadRequest {
				t.Errorf("GET: %d, want 400", res.code)
			}
			res := c.submit("/m/checkin", url.Values{"code": {tt.query}, "kind": {"patrol"}})
			if res.code != http.StatusBadRequest {
				t.Errorf("POST: %d, want 400", res.code)
			}
			if count() != before {
				t.Error("a check-in was recorded")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		fresh := code("k-ruiyi-01", f.keys["k-ruiyi-01"], f.clock.Now())
		if res := officer.get("/m/checkin?" + fresh); res.code != http.StatusOK {
			t.Fatalf("fresh code: %d %s", res.code, errorText(res.body))
		}
		f.clock.Add(10 * time.Minute)
		if res := officer.get("/m/checkin?" + fresh); res.code != http.StatusBadRequest || !strings.Contains(res.body, T(Zh, "checkin.bad")) {
			t.Errorf("GET a 10-minute-old code: %d, want 400 with the message", res.code)
		}
		if res := officer.submit("/m/checkin", url.Values{"code": {fresh}, "kind": {"visit"}}); res.code != http.StatusBadRequest {
			t.Errorf("POST a 10-minute-old code: %d, want 400", res.code)
		}
		if count() != 1 {
			t.Errorf("%d check-ins, want 1", count())
		}
	})
	t.Run("roles", func(t *testing.T) {
		for user, want := range map[string]int{"partner": 403, "huangpu": 403, "tech": 403} {
			if res := f.login(user).get("/m/checkin?" + good); res.code != want {
				t.Errorf("%s: %d, want %d", user, res.code, want)
			}
		}
	})
}

func TestCreateCaseOnce(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	c := f.login("huangpu")
	page := c.get("/cases/new")
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("new case page %d has no token", page.code)
	}
	form := url.Values{"token": {m[1]}, "source": {"hotline"}, "community": {"ruiyi"}, "kind": {"help"},
		"category": {"other"}, "description": {"一次提交两遍"}, "phone": {"13800138000"}}
	var locs []string
	for range 2 {
		res := c.submit("/cases", form)
		if res.code != http.StatusSeeOther {
			t.Fatalf("POST /cases: %d %s", res.code, errorText(res.body))
		}
		locs = append(locs, res.header.Get("Location"))
	}
	if locs[0] != locs[1] {
		t.Errorf("the two posts went to %v", locs)
	}
	list, err := f.st.ListCases(context.Background(), store.CaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("%d cases, want 1", len(list))
	}
	t.Run("a fresh token files another", func(t *testing.T) {
		form := cloneValues(form)
		form.Set("token", protocol.NewID())
		if res := c.submit("/cases", form); res.code != http.StatusSeeOther {
			t.Fatalf("POST /cases: %d %s", res.code, errorText(res.body))
		}
		if list, err := f.st.ListCases(context.Background(), store.CaseFilter{}); err != nil || len(list) != 2 {
			t.Errorf("%d cases (%v), want 2", len(list), err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for name, change := range map[string]url.Values{
			"no token":                 {"token": {""}},
			"community of xuhui":       {"community": {"hengfu"}},
			"a source the role lacks":  {"source": {"kiosk"}},
			"unknown category":         {"category": {"x' OR 1=1"}},
			"description over the cap": {"description": {strings.Repeat("长", protocol.MaxDescription+1)}},
		} {
			form := cloneValues(form)
			form.Set("token", protocol.NewID())
			for k, v := range change {
				form[k] = v
			}
			if res := c.submit("/cases", form); res.code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, res.code, errorText(res.body))
			}
		}
		if list, err := f.st.ListCases(context.Background(), store.CaseFilter{}); err != nil || len(list) != 2 {
			t.Errorf("%d cases (%v), want 2", len(list), err)
		}
	})
}

var timelineItem = regexp.MustCompile(`(?s)<li><time>([^<]*)</time> <strong>([^<]*)</strong> · ([^<(]*?)(?: \(([^)]*)\))?\s*(?:<div class="note">([^<]*)</div>)?\s*</li>`)

// timelineEntries reads the timeline of a case page: time, action label,
// who, role label, note.
func timelineEntries(body string) [][5]string {
	var out [][5]string
	for _, m := range timelineItem.FindAllStringSubmatch(body, -1) {
		out = append(out, [5]string{html.UnescapeString(m[1]), html.UnescapeString(m[2]), strings.TrimSpace(html.UnescapeString(m[3])),
			html.UnescapeString(m[4]), html.UnescapeString(m[5])})
	}
	return out
}

func TestCaseFlow(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin, squad, officer := f.login("huangpu"), f.login("squad"), f.login("officer-a")
	id := admin.createCaseForm(url.Values{"source": {"hotline"}, "community": {"sangcheng"}, "kind": {"complaint"},
		"category": {"facade"}, "building": {"3号"}, "description": {"外墙私自开窗"}, "phone": {"13800138000"}})
	officerA := f.accounts["officer-a"].ID
	type step struct {
		name   string
		c      *client
		form   url.Values
		want   int
		state  cases.State
		action string // the timeline's new last entry: action label, who, role
		who    string
		role   string
	}
	steps := []step{
		{"answer a received case", squad, url.Values{"action": {"answer"}, "note": {"答复"}}, http.StatusConflict, cases.StateReceived, "", "", ""},
		{"officer cannot see it yet", officer, url.Values{"action": {"accept"}}, http.StatusNotFound, cases.StateReceived, "", "", ""},
		{"dispatch to a non-officer", squad, url.Values{"action": {"dispatch"}, "officer": {f.accounts["xuhui"].ID}}, http.StatusBadRequest, cases.StateReceived, "", "", ""},
		{"dispatch", squad, url.Values{"action": {"dispatch"}, "officer": {officerA}, "note": {"请尽快处理"}}, http.StatusSeeOther, cases.StateDispatched, "派单", "五里桥中队长", "中队长"},
		{"accept", officer, url.Values{"action": {"accept"}, "back": {"/m/cases/" + id}}, http.StatusSeeOther, cases.StateInProgress, "签收", "队员甲", "队员"},
		{"answer without a reply", officer, url.Values{"action": {"answer"}}, http.StatusBadRequest, cases.StateInProgress, "", "", ""},
		{"answer", officer, url.Values{"action": {"answer"}, "note": {"已责令恢复原状"}, "back": {"/m/cases/" + id}}, http.StatusSeeOther, cases.StateAnswered, "答复", "队员甲", "队员"},
		{"rate as the officer", officer, url.Values{"action": {"rate"}, "rating": {"satisfied"}}, http.StatusConflict, cases.StateAnswered, "", "", ""},
		{"rate not satisfied", squad, url.Values{"action": {"rate"}, "rating": {"not_satisfied"}, "note": {"居民称仍未整改"}}, http.StatusSeeOther, cases.StateInProgress, "重新处置", "系统", "系统"},
	}
	var times []string
	for _, s := range steps {
		f.clock.Add(2 * time.Minute) // within the sessions' idle timeout
		before := f.caseNow(id)
		res := s.c.submit("/cases/"+id+"/action", s.form)
		if res.code != s.want {
			t.Fatalf("%s: %d %s, want %d", s.name, res.code, errorText(res.body), s.want)
		}
		after := f.caseNow(id)
		if cases.State(after.State) != s.state {
			t.Fatalf("%s: state %s, want %s", s.name, after.State, s.state)
		}
		switch s.want {
		case http.StatusSeeOther:
			back := "/cases/" + id
			if b := s.form.Get("back"); b != "" {
				back = b
			}
			if loc := res.header.Get("Location"); loc != back+"?ok=act.done" {
				t.Errorf("%s: redirect to %q", s.name, loc)
			}
			times = append(times, fmtTime(f.clock.Now()))
		case http.StatusConflict:
			if msg := errorText(res.body); !strings.HasPrefix(msg, T(Zh, "err.transition")) || !strings.Contains(msg, "forbidden transition") {
				t.Errorf("%s: message %q", s.name, msg)
			}
			fallthrough
		default:
			if after != before {
				t.Errorf("%s: the case changed", s.name)
			}
		}
		if s.action == "" {
			continue
		}
		page := admin.get("/cases/" + id)
		tl := timelineEntries(page.body)
		if len(tl) == 0 {
			t.Fatalf("%s: no timeline on the case page", s.name)
		}
		last := tl[len(tl)-1]
		if last[1] != s.action || last[2] != s.who || last[3] != s.role || last[0] != fmtTime(f.clock.Now()) {
			t.Errorf("%s: last timeline entry %q, want %s · %s (%s) at %s", s.name, last, s.action, s.who, s.role, fmtTime(f.clock.Now()))
		}
	}
	page := admin.get("/cases/" + id)
	tl := timelineEntries(page.body)
	want := [][4]string{
		{"受理", "黄浦区管理员", "区局管理员", fmtTime(t0)},
		{"派单", "五里桥中队长", "中队长", times[0]},
		{"签收", "队员甲", "队员", times[1]},
		{"答复", "队员甲", "队员", times[2]},
		{"评价", "五里桥中队长", "中队长", times[3]},
		{"重新处置", "系统", "系统", times[3]},
	}
	if len(tl) != len(want) {
		t.Fatalf("timeline %q, want %d entries", tl, len(want))
	}
	for i, w := range want {
		if tl[i][1] != w[0] || tl[i][2] != w[1] || tl[i][3] != w[2] || tl[i][0] != w[3] {
			t.Errorf("timeline entry %d: %q, want %q", i, tl[i], w)
		}
	}
	for _, note := range []string{"承办人：队员甲；请尽快处理", "已责令恢复原状", "评价：不满意；居民称仍未整改"} {
		if !strings.Contains(page.body, note) {
			t.Errorf("the timeline does not show %q", note)
		}
	}
	if res := officer.get("/m/cases/" + id); res.code != http.StatusOK || !strings.Contains(res.body, `id="form-answer"`) {
		t.Errorf("the reopened task (%d) offers no answer form to its officer", res.code)
	}
	if res := officer.get("/m"); !strings.Contains(res.body, "/m/cases/"+id) {
		t.Error("the reopened case is not among the officer's tasks")
	}
}
