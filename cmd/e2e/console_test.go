package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// writeShots makes TestCaseLoopInBrowser also write its screenshots to
// docs/screenshots (they always go to the test's artifact directory, kept
// with go test -artifacts).
var writeShots = flag.Bool("screenshots", false, "write docs/screenshots/console-*.png from TestCaseLoopInBrowser")

// consoleAccount is a staff account the test creates and logs in with.
type consoleAccount struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Node        string `json:"node"`
	password    string
}

// addAccount creates a staff account through the admin API, as
// `hub user add` does.
func (a api) addAccount(username, name, role, node string) consoleAccount {
	a.t.Helper()
	acct := consoleAccount{password: "e2e-" + username + "-密码"}
	a.do(http.MethodPost, "/api/v1/accounts", map[string]string{
		"username": username, "display_name": name, "role": role, "node": node, "password": acct.password,
	}, &acct)
	if acct.ID == "" || acct.Username != username {
		a.t.Fatalf("account %s created as %+v", username, acct)
	}
	return acct
}

// login logs acct in on the console's login page and returns the path it
// lands on.
func login(t *testing.T, tab *browser.Tab, base string, acct consoleAccount) string {
	t.Helper()
	if code := tab.Go(base + "/login"); code != http.StatusOK {
		t.Fatalf("GET /login: %d", code)
	}
	tab.Fill(`input[name="username"]`, acct.Username)
	tab.Fill(`input[name="password"]`, acct.password)
	if code := tab.Submit("#login"); code != http.StatusOK {
		t.Fatalf("%s logging in: page answered %d", acct.Username, code)
	}
	return strings.TrimPrefix(tab.URL(), base)
}

// shot writes a screenshot of tab to the test's artifact directory and,
// with -screenshots, to docs/screenshots/name.
func shot(t *testing.T, tab *browser.Tab, name string) {
	t.Helper()
	path := filepath.Join(t.ArtifactDir(), name)
	tab.Screenshot(path)
	if !*writeShots {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot(), "docs", "screenshots", name), b, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
}

// gpsMarker is a string inside the GPS EXIF data of the test photo: it
// must not survive the hub's photo normalisation.
const gpsMarker = "SHEQU-GPS-31.2304N"

// photoWithGPS returns a JPEG as a phone camera writes it: an APP1 EXIF
// segment right after SOI whose first IFD points to a GPS IFD with
// latitude, longitude and a processing-method string carrying gpsMarker.
func photoWithGPS(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			img.Set(x, y, color.RGBA{uint8(x / 3), uint8(y / 2), 90, 255})
		}
	}
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatalf("encode test photo: %v", err)
	}

	be := binary.BigEndian
	// TIFF header, IFD0 at 8 with one entry (GPS IFD pointer).
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	const ifd0Len = 2 + 12 + 4
	gpsOff := uint32(8 + ifd0Len)
	tiff = be.AppendUint16(tiff, 1)
	tiff = append(tiff, 0x88, 0x25, 0, 4, 0, 0, 0, 1) // GPSInfo, LONG, 1
	tiff = be.AppendUint32(tiff, gpsOff)
	tiff = be.AppendUint32(tiff, 0) // no next IFD
	// GPS IFD: LatitudeRef, Latitude, LongitudeRef, Longitude, ProcessingMethod.
	const gpsEntries = 5
	dataOff := gpsOff + 2 + 12*gpsEntries + 4
	method := append([]byte("ASCII\x00\x00\x00"), gpsMarker...)
	tiff = be.AppendUint16(tiff, gpsEntries)
	tiff = append(tiff, 0, 1, 0, 2, 0, 0, 0, 2, 'N', 0, 0, 0) // GPSLatitudeRef
	tiff = append(tiff, 0, 2, 0, 5, 0, 0, 0, 3)               // GPSLatitude, 3 RATIONAL
	tiff = be.AppendUint32(tiff, dataOff)
	tiff = append(tiff, 0, 3, 0, 2, 0, 0, 0, 2, 'E', 0, 0, 0) // GPSLongitudeRef
	tiff = append(tiff, 0, 4, 0, 5, 0, 0, 0, 3)               // GPSLongitude, 3 RATIONAL
	tiff = be.AppendUint32(tiff, dataOff+24)
	tiff = append(tiff, 0, 0x1B, 0, 7) // GPSProcessingMethod, UNDEFINED
	tiff = be.AppendUint32(tiff, uint32(len(method)))
	tiff = be.AppendUint32(tiff, dataOff+48)
	tiff = be.AppendUint32(tiff, 0) // no next IFD
	for _, v := range []uint32{31, 1, 13, 1, 4944, 100, 121, 1, 28, 1, 3060, 100} {
		tiff = be.AppendUint32(tiff, v)
	}
	tiff = append(tiff, method...)

	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	be.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)

	b := enc.Bytes()
	out := append(append(append([]byte{}, b[:2]...), seg...), b[2:]...)
	if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Fatalf("the test photo with EXIF does not decode: %v", err)
	}
	return out
}

// fetchImage fetches the first image matching sel through the tab (with
// its session cookie) and returns its URL path and bytes.
func fetchImage(t *testing.T, tab *browser.Tab, sel string) (string, []byte) {
	t.Helper()
	var got struct {
		Src    string `json:"src"`
		Status int    `json:"status"`
		Type   string `json:"type"`
		Data   string `json:"data"`
	}
	tab.Eval(`(async () => {
		const img = document.querySelector(`+"`"+sel+"`"+`);
		if (!img) return {src: "", status: 0, type: "", data: ""};
		const r = await fetch(img.src, {credentials: "same-origin"});
		const b = new Uint8Array(await r.arrayBuffer());
		let s = "";
		for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
		return {src: new URL(img.src).pathname, status: r.status, type: r.headers.get("Content-Type"), data: btoa(s)};
	})()`, &got)
	if got.Src == "" {
		t.Fatalf("no image matches %s", sel)
	}
	if got.Status != http.StatusOK || got.Type != "image/jpeg" {
		t.Fatalf("GET %s: status %d, type %q", got.Src, got.Status, got.Type)
	}
	data, err := base64.StdEncoding.DecodeString(got.Data)
	if err != nil {
		t.Fatalf("decode image bytes: %v", err)
	}
	return got.Src, data
}

// jpegMarkers returns the markers of a JPEG's segments before its scan.
func jpegMarkers(b []byte) []byte {
	var out []byte
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		m := b[i+1]
		out = append(out, m)
		if m == 0xDA { // start of scan: the entropy-coded data follows
			break
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	return out
}

// residentKiosk is the kiosk's screen model fed from the agent's local API
// with content, status and case-board events, as cmd/kiosk runs it, minus
// the Fyne layer.
type residentKiosk struct {
	model  *screen.Model
	client *agentclient.Client
}

func startResidentKiosk(t *testing.T, socket string) *residentKiosk {
	t.Helper()
	model, err := screen.New(screen.Config{})
	if err != nil {
		t.Fatalf("screen.New: %v", err)
	}
	k := &residentKiosk{model: model, client: agentclient.New(socket)}
	ctx, cancel := context.WithCancel(context.Background())
	refresh := make(chan struct{}, 1)
	apply := agentclient.Apply{
		Content: model.SetContent,
		Status:  model.SetStatus,
		Cases: func(int64) {
			select {
			case refresh <- struct{}{}:
			default:
			}
		},
	}
	done := make(chan error, 2)
	go func() { done <- agentclient.SyncAll(ctx, k.client, apply, testLogger(t).With("proc", "kiosk")) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-refresh:
				if err := model.RefreshCase(ctx, k.client); err != nil && ctx.Err() == nil {
					t.Logf("kiosk: refresh case: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Errorf("kiosk sync: %v", err)
			}
		}
	})
	return k
}

// view is what the kiosk shows now.
func (k *residentKiosk) view() screen.View { return k.model.View(time.Now()) }

// wantScreen fails the test unless the kiosk shows s.
func (k *residentKiosk) wantScreen(t *testing.T, step string, s screen.Screen) screen.View {
	t.Helper()
	v := k.view()
	if v.Screen != s {
		t.Fatalf("%s: kiosk shows %s (error %q: %s), want %s", step, v.Screen, v.Err, v.ErrDetail, s)
	}
	return v
}

// typeDigits types s on the kiosk's keypad.
func (k *residentKiosk) typeDigits(s string) {
	for _, d := range s {
		k.model.Digit(d, time.Now())
	}
}

// fileComplaint files a complaint through the kiosk's screens, as a
// resident would, and returns the receipt screen.
func (k *residentKiosk) fileComplaint(t *testing.T) screen.View {
	t.Helper()
	m := k.model
	waitFor(t, 15*time.Second, "kiosk home screen with the agent connected", func() (bool, error) {
		st, ok := m.Status()
		return ok && st.Connected && !k.view().Connecting && k.view().Screen == screen.Home, nil
	})
	m.StartFeedback(time.Now())
	m.ChooseKind(protocol.KindComplaint, time.Now())
	m.ChooseCategory(protocol.CatIllegalConstruction, time.Now())
	k.wantScreen(t, "category chosen", screen.Building)
	k.typeDigits("12")
	m.Next(time.Now())
	k.typeDigits("3")
	m.Next(time.Now())
	k.typeDigits("1702")
	m.Next(time.Now())
	k.typeDigits("13800138000")
	m.Next(time.Now())
	k.wantScreen(t, "phone typed", screen.Description)
	m.SetFreeText("楼顶违法搭建彩钢板房", time.Now())
	m.Next(time.Now())
	k.wantScreen(t, "description given", screen.Confirm)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Submit(ctx, k.client, time.Now()); err != nil {
		t.Fatalf("kiosk submit: %v", err)
	}
	v := k.wantScreen(t, "submitted", screen.Receipt)
	if v.Receipt.Ticket == "" || v.QueryCode == "" {
		t.Fatalf("receipt lacks ticket or query code: %+v, code %q", v.Receipt, v.QueryCode)
	}
	if code, ok := protocol.QueryCode(v.Receipt.Ticket); !ok || code != v.QueryCode {
		t.Fatalf("receipt shows query code %q for ticket %s, want %q", v.QueryCode, v.Receipt.Ticket, code)
	}
	m.Back(time.Now())
	k.wantScreen(t, "left the receipt", screen.Home)
	return v
}

// TestCaseLoopInBrowser runs the whole case loop with a real browser on
// the staff console: a resident files a complaint at the kiosk; the squad
// leader finds it in the console's inbox and dispatches it; the officer,
// on a phone-sized viewport, accepts it, records work with a photo that
// carries GPS EXIF (stored without it) and answers; the kiosk shows the
// answer when the resident looks the case up by its query code, and the
// resident's rating reaches the leader's case page. Screenshots go to the
// test's artifact directory (and docs/screenshots with -screenshots).
func TestCaseLoopInBrowser(t *testing.T) {
	const answer = "已拆除违建，现场已恢复"

	// 1. Hub, enrolled agent, kiosk; the squad's accounts.
	e := newEnv(t, "mochi", nil)
	hubAPI := e.api()
	base := e.hub.HTTPURL()
	socket, agentDir := filepath.Join(t.TempDir(), "agent.sock"), t.TempDir()
	e.enrol(demoKiosk, agentDir)
	ag := e.startAgent(agentDir, socket)
	kiosk := startResidentKiosk(t, socket)
	leader := hubAPI.addAccount("wang.dz", "王队长", "squad_leader", "wuliqiao")
	officer := hubAPI.addAccount("li.dy", "李队员", "officer", "wuliqiao")

	// 2. The resident files a complaint at the kiosk; the hub stores it.
	receipt := kiosk.fileComplaint(t)
	ticket, queryCode := receipt.Receipt.Ticket, receipt.QueryCode
	waitFor(t, 20*time.Second, "the hub to store feedback "+ticket, func() (bool, error) {
		for _, f := range hubAPI.feedback() {
			if f.Ticket == ticket {
				return f.Kiosk == demoKiosk, nil
			}
		}
		return false, nil
	})

	b := browser.Start(t, browser.WithCA(e.hub.CACertPEM()))

	// 3. The leader, on a desktop: inbox, case, dispatch.
	desk := b.NewTab(t, browser.Desktop())
	if got := login(t, desk, base, leader); got != "/cases" {
		t.Fatalf("leader landed on %s, want /cases", got)
	}
	desk.WaitText(".who", "王队长")
	desk.WaitText("#cases", ticket)
	var casePath string
	desk.Eval(`(() => {
		const a = Array.from(document.querySelectorAll("#cases a")).find(a => a.textContent.trim() === `+jsString(t, ticket)+`);
		return a ? a.getAttribute("href") : "";
	})()`, &casePath)
	if !strings.HasPrefix(casePath, "/cases/") {
		t.Fatalf("inbox has no link to ticket %s (got %q)", ticket, casePath)
	}
	caseID := strings.TrimPrefix(casePath, "/cases/")
	row := desk.Text(`#cases tr[data-id="` + caseID + `"]`)
	for _, want := range []string{"已受理", "违法搭建", "社区终端"} {
		if !strings.Contains(row, want) {
			t.Errorf("inbox row of %s is %q, want it to contain %q", ticket, row, want)
		}
	}
	shot(t, desk, "console-inbox.png")

	if code := desk.ClickLoad(`#cases a[href="` + casePath + `"]`); code != http.StatusOK {
		t.Fatalf("open case %s: %d", casePath, code)
	}
	desk.WaitText("#ticket", ticket)
	desk.WaitText("#state", "已受理")
	desk.WaitText("#description", "楼顶违法搭建彩钢板房")
	desk.WaitText("#phone", "13800138000") // the leader handles the case: unmasked
	desk.Click("#open-dispatch")
	desk.Select(`#form-dispatch select[name="officer"]`, officer.ID)
	desk.Fill("#form-dispatch textarea[name=note]", "请今日内现场核查")
	if code := desk.Submit("#do-dispatch"); code != http.StatusOK {
		t.Fatalf("dispatch: page answered %d", code)
	}
	desk.WaitText("#flash", "已办理")
	desk.WaitText("#state", "已派单")
	desk.WaitText("#assignee", "李队员")
	desk.WaitText("#timeline", "派单")
	desk.WaitText("#timeline", "请今日内现场核查")
	shot(t, desk, "console-case.png")

	// 4. The officer, on a phone: my tasks, accept, work with a photo, answer.
	phone := b.NewTab(t, browser.Phone())
	if got := login(t, phone, base, officer); got != "/m" {
		t.Fatalf("officer landed on %s, want /m", got)
	}
	phone.WaitText("#tasks", ticket)
	if code := phone.ClickLoad(`#tasks a[href="/m/cases/` + caseID + `"]`); code != http.StatusOK {
		t.Fatalf("open task: %d", code)
	}
	phone.WaitText("#ticket", ticket)
	phone.WaitText("#state", "已派单")
	if code := phone.Submit("#do-accept"); code != http.StatusOK {
		t.Fatalf("accept: page answered %d", code)
	}
	phone.WaitText("#state", "处置中")

	photo := photoWithGPS(t)
	if !bytes.Contains(photo, []byte(gpsMarker)) || !bytes.Contains(photo, []byte("Exif\x00\x00")) {
		t.Fatal("the test photo lacks its GPS EXIF")
	}
	photoPath := filepath.Join(t.TempDir(), "现场照片.jpg")
	if err := os.WriteFile(photoPath, photo, 0o600); err != nil {
		t.Fatalf("write test photo: %v", err)
	}
	phone.Fill("#work textarea[name=note]", "到场核实，督促当事人自行拆除")
	phone.SetFile(`#work input[type="file"]`, photoPath)
	if code := phone.Submit("#save-work"); code != http.StatusOK {
		t.Fatalf("save work: page answered %d", code)
	}
	phone.WaitText("#flash", "工作记录已保存")
	phone.WaitText("#timeline", "到场核实，督促当事人自行拆除")
	phone.WaitVisible("#timeline img")

	phone.Fill("#form-answer textarea[name=note]", answer)
	if code := phone.Submit("#do-answer"); code != http.StatusOK {
		t.Fatalf("answer: page answered %d", code)
	}
	phone.WaitText("#state", "已答复")
	phone.WaitText("#timeline", answer)
	shot(t, phone, "console-officer-phone.png")

	// The hub stored the photo re-encoded, without EXIF or location.
	src, stored := fetchImage(t, phone, "#timeline img")
	sum := sha256.Sum256(stored)
	if !strings.HasSuffix(src, "/"+hex.EncodeToString(sum[:])) {
		t.Errorf("photo %s does not end with the SHA-256 of its bytes (%x)", src, sum)
	}
	if bytes.Equal(stored, photo) {
		t.Error("the hub stored the uploaded photo unchanged")
	}
	for _, s := range []string{"Exif", gpsMarker} {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the stored photo still contains %q", s)
		}
	}
	for _, m := range jpegMarkers(stored) {
		if m == 0xE1 {
			t.Errorf("the stored photo has an APP1 segment (markers % X)", jpegMarkers(stored))
		}
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(stored)); err != nil {
		t.Errorf("the stored photo is not a JPEG: %v", err)
	} else if cfg.Width != 640 || cfg.Height != 480 {
		t.Errorf("the stored photo is %d×%d, want 640×480", cfg.Width, cfg.Height)
	}

	// 5. The kiosk: the answer reaches the agent's case board; the resident
	// looks the case up by its query code and rates it.
	waitFor(t, 20*time.Second, "the answered case to reach the kiosk's board", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := kiosk.client.Case(ctx, queryCode)
		return err == nil && c.State == protocol.CaseAnswered, err
	})
	kiosk.model.StartLookup(time.Now())
	kiosk.wantScreen(t, "查询进度", screen.Lookup)
	kiosk.typeDigits(queryCode)
	if v := kiosk.view(); v.Keypad != queryCode {
		t.Fatalf("kiosk keypad shows %q after typing %q", v.Keypad, queryCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kiosk.model.LookUp(ctx, kiosk.client, time.Now()); err != nil {
		t.Fatalf("kiosk look-up of %s: %v", queryCode, err)
	}
	v := kiosk.wantScreen(t, "look-up", screen.CaseResult)
	if v.Case.Ticket != ticket || v.Case.State != protocol.CaseAnswered || v.Case.Answer != answer || !v.Case.Rateable {
		t.Fatalf("kiosk shows case %+v, want %s answered %q and rateable", v.Case.CaseStatus, ticket, answer)
	}
	if v.CaseStale {
		t.Error("kiosk marks the case stale although the agent is connected")
	}
	if err := kiosk.model.Rate(ctx, kiosk.client, protocol.RatingSatisfied, time.Now()); err != nil {
		t.Fatalf("kiosk rating: %v", err)
	}
	if v := kiosk.wantScreen(t, "rated", screen.Rated); v.Rating != protocol.RatingSatisfied {
		t.Fatalf("kiosk thanks for rating %q, want %q", v.Rating, protocol.RatingSatisfied)
	}
	waitFor(t, 20*time.Second, "the rating to reach the hub and its board the kiosk", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := kiosk.client.Case(ctx, ticket)
		return err == nil && c.State == protocol.CaseRated && c.Rating == protocol.RatingSatisfied && !c.Rateable &&
			ag.Status().OutboxDepth == 0, err
	})

	// The leader's case page shows the rating.
	if code := desk.Go(base + casePath); code != http.StatusOK {
		t.Fatalf("reload case page: %d", code)
	}
	desk.WaitText("#state", "已评价")
	desk.WaitText("#rating", "满意")
	desk.WaitText("#timeline", "终端评价")
	desk.WaitText("#timeline", answer)
	shot(t, desk, "console-rated.png")
}

// jsString quotes s as a JavaScript string literal.
func jsString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("quote %q: %v", s, err)
	}
	return string(b)
}
