package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/releases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// The releases pages: bureau and district admins upload kiosk image
// releases (signed RAUC bundles, checked by hub/releases), start rollouts
// of a release over the org tree stage by stage, and halt, resume or
// cancel them. An admin starts rollouts only on targets within its node
// and sees only the rollouts whose every target is, as with notices. The
// fleet pages show each kiosk's OS version, slot and update state.

// Releases keeps kiosk image releases and their rollouts
// (hub/releases.Service).
type Releases interface {
	// UploadHandler serves a raw bundle upload (Content-Length, ?notes=);
	// the console puts it behind a session and CSRF check and passes the
	// account on as the actor (jsonhttp.WithActor).
	UploadHandler() http.Handler
	MaxUpload() int64
	Releases(ctx context.Context) ([]store.ReleaseRecord, error)
	Start(ctx context.Context, req releases.RolloutRequest, actor string) (store.RolloutRecord, error)
	SetState(ctx context.Context, id, state, reason string) (store.RolloutRecord, error)
	View(ctx context.Context, id string) (releases.RolloutView, error)
	Views(ctx context.Context) ([]releases.RolloutView, error)
	KioskUpdates(ctx context.Context) (map[string]store.KioskUpdate, error)
}

var _ Releases = (*releases.Service)(nil)

// releasePages are the releases pages and their layout.
var releasePages = map[string]string{"releases": "desk", "rollout": "desk"}

// releaseRoles may see and change releases and rollouts.
var releaseRoles = []accounts.Role{accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin}

// maxSoakMinutes bounds the soak time the form takes: a week.
const maxSoakMinutes = 7 * 24 * 60

// maxReason bounds the reason of a halt or cancel, as the API does.
const maxReason = 200

// releaseMessages are the releases pages' and update states' messages.
var releaseMessages = htmlpage.Messages{
	"nav.releases":          {"系统更新", "Updates"},
	"releases":              {"系统更新", "Kiosk updates"},
	"rel.list":              {"已上传的版本", "Releases"},
	"rel.version":           {"版本", "Version"},
	"rel.size":              {"大小", "Size"},
	"rel.build":             {"构建", "Build"},
	"rel.uploaded_by":       {"上传人", "Uploaded by"},
	"rel.uploaded_at":       {"上传时间", "Uploaded"},
	"rel.notes":             {"说明", "Notes"},
	"rel.upload":            {"上传更新包", "Upload a release"},
	"rel.file":              {"更新包（.raucb，须由更新证书签名）", "Bundle (.raucb, signed with the update key)"},
	"rel.uploading":         {"正在上传", "Uploading"},
	"rel.checking":          {"上传完成，正在校验签名。", "Uploaded; checking the signature."},
	"rel.failed":            {"上传失败：", "Upload failed: "},
	"rel.uploaded":          {"更新包已上传并通过校验。", "Release uploaded and checked."},
	"rel.start":             {"发起分批更新", "Start a rollout"},
	"rel.release":           {"更新到版本", "Release"},
	"rel.stages":            {"批次（每行一批：“名称: 组织或终端编号 …”）", "Stages (one a line: \"name: org unit or kiosk ids …\")"},
	"rel.stages.help":       {"按顺序逐批更新；前一批达到健康比例并观察期满后才开始下一批。每台终端只计入第一个包含它的批次。", "Stages are updated in order; the next starts once a stage is healthy enough for the soak time. A kiosk belongs to the first stage that reaches it."},
	"rel.max_bad":           {"最大失败比例 %", "Max bad %"},
	"rel.min_healthy":       {"最低健康比例 %", "Min healthy %"},
	"rel.soak":              {"观察期（分钟，0 为不观察）", "Soak (minutes, 0 for none)"},
	"rel.downgrade":         {"允许降级（安装比当前更旧的版本）", "Allow a downgrade (install an older release)"},
	"rel.started":           {"分批更新已开始。", "Rollout started."},
	"rel.rollouts":          {"分批更新", "Rollouts"},
	"rel.rollout":           {"分批更新", "Rollout"},
	"rel.none":              {"暂无版本，请先上传更新包。", "No releases yet; upload a bundle first."},
	"rel.stage":             {"批次", "Stage"},
	"rel.targets":           {"范围", "Targets"},
	"rel.kiosks":            {"终端数", "Kiosks"},
	"rel.healthy":           {"正常", "Healthy"},
	"rel.bad":               {"失败", "Bad"},
	"rel.busy":              {"进行中", "Busy"},
	"rel.reason":            {"原因", "Reason"},
	"rel.created":           {"发起", "Started"},
	"rel.updated":           {"更新于", "Updated"},
	"rel.thresholds":        {"门限", "Thresholds"},
	"rel.halt":              {"暂停", "Halt"},
	"rel.resume":            {"继续", "Resume"},
	"rel.cancel":            {"取消", "Cancel"},
	"rel.halted":            {"分批更新已暂停。", "Rollout halted."},
	"rel.resumed":           {"分批更新已继续。", "Rollout resumed."},
	"rel.cancelled":         {"分批更新已取消。", "Rollout cancelled."},
	"rel.kiosk_rows":        {"各终端进度", "Kiosks"},
	"rel.status_at":         {"状态时间", "Status at"},
	"rel.err.stage":         {"批次格式不对（每行“名称: 编号 编号”）：", "A stage line is not \"name: id id\": "},
	"rel.err.stages":        {"请至少填写一个批次。", "Please give at least one stage."},
	"rel.err.target":        {"不在您的范围内或不存在的组织/终端：", "Not an org unit or kiosk within your area: "},
	"rel.err.number":        {"比例须为 1–100 的整数，观察期须为 0 到 10080 的整数（分钟）。", "Percentages are whole numbers from 1 to 100, the soak a whole number of minutes from 0 to 10080."},
	"rel.err.release":       {"请选择版本。", "Please pick a release."},
	"rel.err.refused":       {"操作未执行：", "Not done: "},
	"col.os":                {"系统版本", "OS version"},
	"col.update":            {"系统更新", "Update"},
	"upd.title":             {"系统更新", "Software update"},
	"upd.offered":           {"提供的版本", "Release offered"},
	"upd.last":              {"最近一次更新记录", "Last update record"},
	"upd.because":           {"：", ": "},
	"upd.idle":              {"空闲", "Idle"},
	"upd.unsupported":       {"不支持", "No A/B updates"},
	"upd.downloading":       {"下载中", "Downloading"},
	"upd.installing":        {"安装中", "Installing"},
	"upd.installed":         {"已安装·重启中", "Installed, rebooting"},
	"upd.booted":            {"新系统自检中", "Checking the new slot"},
	"upd.healthy":           {"正常", "Healthy"},
	"upd.refused":           {"已拒绝", "Refused"},
	"upd.failed":            {"失败", "Failed"},
	"upd.rolled_back":       {"已回滚", "Rolled back"},
	"rstate.running":        {"进行中", "Running"},
	"rstate.halted":         {"已暂停", "Halted"},
	"rstate.done":           {"已完成", "Done"},
	"rstate.cancelled":      {"已取消", "Cancelled"},
	"sstate.done":           {"已完成", "Done"},
	"sstate.current":        {"当前批次", "Current"},
	"sstate.waiting":        {"等待中", "Waiting"},
	"aact.release.upload":   {"上传更新包", "Release uploaded"},
	"aact.rollout.start":    {"发起分批更新", "Rollout started"},
	"aact.rollout.halt":     {"暂停分批更新", "Rollout halted"},
	"aact.rollout.resume":   {"继续分批更新", "Rollout resumed"},
	"aact.rollout.cancel":   {"取消分批更新", "Rollout cancelled"},
	"aact.rollout.stage":    {"进入下一批次", "Rollout moved on a stage"},
	"aact.rollout.done":     {"分批更新完成", "Rollout done"},
	"rel.defaults":          {"留空则用默认值。", "Leave empty for the defaults."},
	"rel.allow_downgrade":   {"允许降级", "Downgrade allowed"},
	"rel.err.reason":        {"原因最多 200 个字。", "A reason has at most 200 characters."},
	"rel.reason.halt":       {"暂停原因（可选）", "Why halt (optional)"},
	"rel.reason.cancel":     {"取消原因（可选）", "Why cancel (optional)"},
	"rel.current_stage":     {"当前批次", "Current stage"},
	"rel.progress":          {"进度（正常/终端数）", "Progress (healthy/kiosks)"},
	"rel.soak_minutes":      {"观察期", "Soak"},
	"rel.minutes":           {"分钟", "min"},
	"rel.upload.help":       {"上传后中心用更新证书校验签名、格式和适用机型，版本号不能与已有版本重复。", "The hub checks the bundle's signature, format and compatible against the update CA; a version can be uploaded once."},
	"rel.notes.placeholder": {"本版本的变更（可选）", "What changed (optional)"},
}

// releaseDone are the flashes a redirect on the releases pages may ask for.
var releaseDone = []string{"rel.uploaded", "rel.started", "rel.halted", "rel.resumed", "rel.cancelled"}

// registerReleases adds the releases pages.
func (c *Console) registerReleases(m Mux) {
	admins := c.cfg.Accounts.RequireSession(releaseRoles...)
	c.page(m, "GET /releases", c.releasesPage, releaseRoles...)
	m.HandleLarge("POST /releases", secure(admins(http.HandlerFunc(c.uploadRelease))), c.cfg.Releases.MaxUpload())
	c.page(m, "POST /releases/rollouts", c.startRollout, releaseRoles...)
	c.page(m, "GET /releases/rollouts/{id}", c.rolloutPage, releaseRoles...)
	c.page(m, "POST /releases/rollouts/{id}/halt", c.setRolloutState(store.RolloutHalted, "rel.halted"), releaseRoles...)
	c.page(m, "POST /releases/rollouts/{id}/resume", c.setRolloutState(store.RolloutRunning, "rel.resumed"), releaseRoles...)
	c.page(m, "POST /releases/rollouts/{id}/cancel", c.setRolloutState(store.RolloutCancelled, "rel.cancelled"), releaseRoles...)
}

// uploadRelease serves a bundle upload (Releases.UploadHandler) as made by
// the signed-in account.
func (c *Console) uploadRelease(w http.ResponseWriter, r *http.Request) {
	_, a := c.principal(r)
	c.cfg.Releases.UploadHandler().ServeHTTP(w, r.WithContext(asAccount(r, a)))
}

// releaseRow is a release as the list shows it.
type releaseRow struct {
	store.ReleaseRecord
	By   string
	Size string
}

// rolloutForm is the rollout form's input as typed.
type rolloutForm struct {
	Release, Stages, MaxBad, MinHealthy, Soak string
	Downgrade                                 bool
}

// releasesData is the releases page's data.
type releasesData struct {
	Releases  []releaseRow
	Rollouts  []rolloutRow
	MaxUpload int64
	Form      rolloutForm
	Error     string
}

// rolloutRow is a rollout as the list shows it.
type rolloutRow struct {
	releases.RolloutView
	By      string
	Current string // the current stage's name
	Counts  releases.Counts
}

// visibleRollout reports whether every target of a rollout lies within
// the account's scope (only then may it see or change the rollout).
func visibleRollout(p accounts.Principal, v releases.RolloutView) bool {
	for _, st := range v.Stages {
		for _, t := range st.Targets {
			if !p.CanSee(t) {
				return false
			}
		}
	}
	return len(v.Stages) > 0
}

func (c *Console) releasesPage(w http.ResponseWriter, r *http.Request) {
	c.showReleases(w, r, http.StatusOK, rolloutForm{MaxBad: strconv.Itoa(releases.DefaultMaxBadPercent),
		MinHealthy: strconv.Itoa(releases.DefaultMinHealthyPercent), Soak: strconv.Itoa(int(releases.DefaultSoak / time.Minute))}, "")
}

// showReleases renders the releases page with the rollout form filled in
// with form and showing problem when it is set.
func (c *Console) showReleases(w http.ResponseWriter, r *http.Request, code int, form rolloutForm, problem string) {
	p, _ := c.principal(r)
	lang := langOf(r)
	rels, err := c.cfg.Releases.Releases(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	views, err := c.cfg.Releases.Views(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names, err := c.accountNames(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := releasesData{MaxUpload: c.cfg.Releases.MaxUpload(), Form: form, Error: problem}
	for _, rel := range rels {
		d.Releases = append(d.Releases, releaseRow{ReleaseRecord: rel, By: actorName(lang, names, rel.UploadedBy), Size: byteSize(rel.Size)})
	}
	if d.Form.Release == "" && len(rels) > 0 {
		d.Form.Release = rels[0].Version
	}
	for _, v := range views {
		if !visibleRollout(p, v) {
			continue
		}
		row := rolloutRow{RolloutView: v, By: actorName(lang, names, v.CreatedBy)}
		if v.Stage < len(v.Stages) {
			row.Current, row.Counts = v.Stages[v.Stage].Name, v.Stages[v.Stage].Counts
		}
		d.Rollouts = append(d.Rollouts, row)
	}
	c.render(w, r, code, "releases", T(lang, "releases"), d)
}

// byteSize is a size in bytes as people read it.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// parseStages reads the stage lines of the rollout form: "name: id id",
// with an ASCII or a full-width colon, ids apart by spaces or commas.
// It returns the first line it cannot read as bad.
func parseStages(text string) (stages []store.Stage, bad string) {
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, rest, ok := strings.Cut(strings.Replace(line, "：", ":", 1), ":")
		targets := strings.FieldsFunc(rest, func(r rune) bool {
			return r == ',' || r == '，' || r == '、' || r == ' ' || r == '\t' || r == '　'
		})
		name = strings.TrimSpace(name)
		if !ok || name == "" || len(targets) == 0 {
			return nil, line
		}
		stages = append(stages, store.Stage{Name: name, Targets: targets})
	}
	return stages, ""
}

// percentField reads a percentage field, 1 to 100; "" is 0, which the
// service takes as its default.
func percentField(s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= 100
}

func (c *Console) startRollout(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	p, a := c.principal(r)
	lang := langOf(r)
	vals, err := formValues(r, map[string]int{"release": 64, "stages": 4000, "max_bad": 8, "min_healthy": 8, "soak": 8})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	form := rolloutForm{Release: vals["release"], Stages: vals["stages"], MaxBad: vals["max_bad"], MinHealthy: vals["min_healthy"],
		Soak: vals["soak"], Downgrade: r.PostForm.Get("downgrade") != ""}
	again := func(code int, problem string) { c.showReleases(w, r, code, form, problem) }
	req := releases.RolloutRequest{Release: form.Release, AllowDowngrade: form.Downgrade}
	stages, bad := parseStages(form.Stages)
	var okBad, okHealthy bool
	req.MaxBadPercent, okBad = percentField(form.MaxBad)
	req.MinHealthyPercent, okHealthy = percentField(form.MinHealthy)
	soak, soakErr := strconv.Atoi(form.Soak)
	okSoak := true
	switch {
	case form.Soak == "":
		req.SoakSeconds = 0 // the default
	case soakErr != nil || soak < 0 || soak > maxSoakMinutes:
		okSoak = false
	case soak == 0:
		req.SoakSeconds = -1 // none
	default:
		req.SoakSeconds = int64(soak) * 60
	}
	switch {
	case req.Release == "":
		again(http.StatusBadRequest, T(lang, "rel.err.release"))
		return
	case bad != "":
		again(http.StatusBadRequest, T(lang, "rel.err.stage")+bad)
		return
	case len(stages) == 0:
		again(http.StatusBadRequest, T(lang, "rel.err.stages"))
		return
	case !okBad || !okHealthy || !okSoak:
		again(http.StatusBadRequest, T(lang, "rel.err.number"))
		return
	}
	for _, st := range stages {
		for _, id := range st.Targets {
			if c.cfg.Tree.Node(id) == nil || !p.CanSee(id) {
				again(http.StatusBadRequest, T(lang, "rel.err.target")+id)
				return
			}
		}
	}
	req.Stages = stages
	ro, err := c.cfg.Releases.Start(asAccount(r, a), req, "account:"+a.ID)
	if code, ok := refusal(err); ok {
		again(code, T(lang, "rel.err.refused")+err.Error())
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, withOK("/releases/rollouts/"+ro.ID, "rel.started"), http.StatusSeeOther)
}

// refusal reports whether err is the releases service refusing a request
// (bad request or conflict), with the status the page answers.
func refusal(err error) (int, bool) {
	switch {
	case errors.Is(err, releases.ErrBadRequest):
		return http.StatusBadRequest, true
	case errors.Is(err, releases.ErrConflict):
		return http.StatusConflict, true
	}
	return 0, false
}

// rolloutData is the rollout page's data.
type rolloutData struct {
	Rollout releases.RolloutView
	By      string
	Kiosks  []kioskUpdateRow
	Error   string
}

// kioskUpdateRow is one kiosk of a rollout as the page shows it.
type kioskUpdateRow struct {
	releases.KioskView
	OS    string
	Words string
	Bad   bool
}

// rollout returns a rollout the account may see.
func (c *Console) rollout(r *http.Request, id string) (releases.RolloutView, error) {
	p, _ := c.principal(r)
	v, err := c.cfg.Releases.View(r.Context(), id)
	if errors.Is(err, releases.ErrNotFound) || err == nil && !visibleRollout(p, v) {
		return v, fmt.Errorf("%w: rollout %q", errNotFound, id)
	}
	return v, err
}

func (c *Console) rolloutPage(w http.ResponseWriter, r *http.Request) {
	c.showRollout(w, r, http.StatusOK, "")
}

// showRollout renders a rollout's page, showing problem when it is set.
func (c *Console) showRollout(w http.ResponseWriter, r *http.Request, code int, problem string) {
	v, err := c.rollout(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names, err := c.accountNames(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	lang := langOf(r)
	d := rolloutData{Rollout: v, By: actorName(lang, names, v.CreatedBy), Error: problem}
	for _, k := range v.Kiosks {
		d.Kiosks = append(d.Kiosks, kioskUpdateRow{KioskView: k, OS: osVersion(k.Version, k.Slot),
			Words: updateWords(lang, k.State, k.Percent, k.Reason), Bad: k.State.Bad()})
	}
	c.render(w, r, code, "rollout", T(lang, "rel.rollout")+" "+v.ID, d)
}

// setRolloutState halts, resumes or cancels a rollout and goes back to
// its page with the done flash.
func (c *Console) setRolloutState(state, done string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r); err != nil {
			c.fail(w, r, err)
			return
		}
		reason, err := formValue(r, "reason", maxReason)
		if err != nil {
			c.showRollout(w, r, http.StatusBadRequest, T(langOf(r), "rel.err.reason"))
			return
		}
		v, err := c.rollout(r, r.PathValue("id"))
		if err != nil {
			c.fail(w, r, err)
			return
		}
		_, a := c.principal(r)
		_, err = c.cfg.Releases.SetState(asAccount(r, a), v.ID, state, reason)
		if code, ok := refusal(err); ok {
			c.showRollout(w, r, code, T(langOf(r), "rel.err.refused")+err.Error())
			return
		}
		if errors.Is(err, releases.ErrNotFound) {
			err = fmt.Errorf("%w: %w", errNotFound, err)
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		http.Redirect(w, r, withOK("/releases/rollouts/"+v.ID, done), http.StatusSeeOther)
	}
}

// osVersion is a kiosk's booted release and slot, e.g. "1.4.0 (B)".
func osVersion(version, slot string) string {
	switch {
	case version == "" && slot == "":
		return ""
	case slot == "":
		return version
	case version == "":
		return "(" + slot + ")"
	}
	return version + " (" + slot + ")"
}

// updateWords is an update state in words: "下载中 42%", "已回滚：reason".
func updateWords(lang Lang, state protocol.UpdateState, percent int, reason string) string {
	if state == "" {
		return ""
	}
	s := label(lang, "upd", string(state))
	switch {
	case state == protocol.UpdateDownloading || state == protocol.UpdateInstalling:
		s += " " + strconv.Itoa(percent) + "%"
	case reason != "" && state.Bad():
		s += T(lang, "upd.because") + reason
	}
	return s
}

// kioskUpdate is what the fleet pages show of a kiosk's updates.
type kioskUpdate struct {
	OS    string // booted release and slot
	Words string // the update state in words
	Bad   bool
	store.KioskUpdate
	LastWords string // the last update record in words
}

// kioskUpdateOf is a kiosk's update as the fleet pages show it: the live
// status, or the last update record when the kiosk never sent one.
func kioskUpdateOf(lang Lang, u store.KioskUpdate) kioskUpdate {
	out := kioskUpdate{OS: osVersion(u.Version, u.Slot), KioskUpdate: u,
		LastWords: updateWords(lang, u.ReportState, 0, u.ReportReason)}
	state, reason := u.State, u.Reason
	if u.StatusAt.IsZero() {
		state, reason = u.ReportState, u.ReportReason
	}
	out.Words, out.Bad = updateWords(lang, state, u.Percent, reason), state.Bad()
	return out
}
