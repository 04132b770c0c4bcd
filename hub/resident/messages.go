package resident

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/shequ/shequ/hub/htmlpage"
)

// Lang is a page language.
type Lang = htmlpage.Lang

// Languages: Simplified Chinese first (the default), English second.
const (
	Zh = htmlpage.Zh
	En = htmlpage.En
)

// langOf returns the request's language: ?lang=en|zh (remembered in a
// cookie), else the cookie, else Chinese.
func langOf(w http.ResponseWriter, r *http.Request) Lang {
	switch q := r.URL.Query().Get("lang"); q {
	case string(Zh), string(En):
		if w != nil {
			http.SetCookie(w, htmlpage.LangCookieOf(r, Lang(q)))
		}
		return Lang(q)
	}
	return htmlpage.CookieLang(r)
}

// otherLangURL is the page at self (a path and query; the request's own
// when empty) in the other language.
func otherLangURL(r *http.Request, self string, lang Lang) string {
	u := *r.URL
	if self != "" {
		p, err := url.Parse(self)
		if err == nil {
			u = *p
		}
	}
	v := u.Query()
	if lang == En {
		v.Set("lang", string(Zh))
	} else {
		v.Set("lang", string(En))
	}
	u.RawQuery = v.Encode()
	return u.RequestURI()
}

// messages is the one message table of the pages: every UI string,
// Chinese first, English second. Keys with a dot are labels of values
// ("kind.complaint").
var messages = htmlpage.Labels.With(htmlpage.Messages{
	"app":        {"城管码 · 社区城管", "Shequ city management"},
	"lang.other": {"English", "中文"},

	"form.title":       {"我要反映", "Report a problem"},
	"form.where":       {"反映地点", "Where"},
	"form.where.help":  {"地点来自您扫描的二维码，无需填写。", "The place comes from the QR code you scanned."},
	"form.kind":        {"反映类型", "Kind"},
	"form.category":    {"问题类别", "Category"},
	"form.category.ph": {"请选择", "Choose one"},
	"form.place":       {"小区内的位置（选填）", "Place in the community (optional)"},
	"form.building":    {"楼号", "Building"},
	"form.unit":        {"单元", "Unit"},
	"form.room":        {"室号", "Room"},
	"form.description": {"具体情况", "What happened"},
	"form.description.help": {"请写明问题和发生的时间，最多 %d 字。",
		"Describe the problem and when it happened, at most %d characters."},
	"form.photos":      {"照片（选填，最多 3 张）", "Photos (optional, at most 3)"},
	"form.photos.help": {"照片上传前会去除拍摄位置等信息。", "Location and other data are removed from photos."},
	"form.phone":       {"联系电话（选填）", "Phone (optional)"},
	"form.phone.help": {"11 位手机号，或固定电话（如 021-12345678）。仅承办人员可见，用于回访。",
		"An 11-digit mobile number or a landline (e.g. 021-12345678). Only the staff handling the case see it, to call you back."},
	"form.honeypot":    {"请勿填写此项", "Leave this empty"},
	"form.submit":      {"提交", "Send"},
	"form.privacy":     {"提交后您将获得工单号，可凭此查看办理进度。", "After sending you get a ticket number to follow the case."},
	"form.errors":      {"请修改以下内容后重新提交：", "Please correct the following and send again:"},
	"form.reselect":    {"出于安全原因，照片需要重新选择。", "For safety, please choose the photos again."},
	"form.fresh":       {"我们已为您更新表单，您填写的内容都已保留，请检查后再提交。", "The form has been renewed with everything you entered kept; check it and send again."},
	"form.kiosk.where": {"%s · %s", "%s · %s"},

	"invalid.kind":        {"请选择反映类型。", "Choose a kind."},
	"invalid.category":    {"请选择问题类别。", "Choose a category."},
	"invalid.description": {"请填写具体情况。", "Describe the problem."},
	"invalid.description.long": {"具体情况最多 %d 字，您写了 %d 字。",
		"What happened may have at most %d characters; it has %d."},
	"invalid.where":     {"楼号、单元、室号每项最多 %d 个字。", "Building, unit and room have at most %d characters each."},
	"invalid.phone":     {"电话号码格式不对：请填 11 位手机号（如 13800138000）或带区号的固定电话（如 021-12345678）。", "That phone number is not valid: enter an 11-digit mobile number (e.g. 13800138000) or a landline with its area code (e.g. 021-12345678)."},
	"invalid.photos":    {"最多只能上传 3 张照片。", "At most 3 photos."},
	"invalid.photo.big": {"照片“%s”太大（最大 15 MB）。", "Photo “%s” is too large (at most 15 MB)."},
	"invalid.photo.bad": {"“%s”不是可识别的图片（请上传 JPEG、PNG、GIF 或 WebP 照片）。", "“%s” is not a picture we can read (use JPEG, PNG, GIF or WebP)."},
	"invalid.photo.px":  {"照片“%s”像素太多。", "Photo “%s” has too many pixels."},
	"invalid.fast":      {"提交太快了。请确认内容后，稍等几秒再提交。", "That was too fast. Check the form and send it again in a few seconds."},
	"invalid.expired":   {"表单已超过 24 小时。", "The form is more than 24 hours old."},
	"invalid.honeypot":  {"无法提交：表单中隐藏的“请勿填写”一项被填写了。如果您使用了自动填表工具，请关闭后再试。", "Cannot send: the hidden “leave this empty” field was filled in. If an autofill tool did this, turn it off and try again."},

	"ticket.title":        {"办理进度", "Case progress"},
	"ticket.accepted":     {"已受理", "Received"},
	"ticket.number":       {"工单号", "Ticket"},
	"ticket.keep":         {"请收藏本页或截图保存。凭本页链接可随时查看进度，答复后可在此评价。", "Bookmark this page or take a screenshot: its link shows the progress, and lets you rate the answer."},
	"ticket.state":        {"当前状态", "Status"},
	"ticket.category":     {"问题类别", "Category"},
	"ticket.where":        {"社区", "Community"},
	"ticket.reported":     {"反映时间", "Reported"},
	"ticket.due":          {"办理时限", "Due"},
	"ticket.due.before":   {"前答复", "(answer by then)"},
	"ticket.timeline":     {"办理经过", "Progress"},
	"ticket.answer":       {"答复", "Answer"},
	"ticket.rating":       {"您的评价", "Your rating"},
	"ticket.rate":         {"请对答复进行评价", "Rate the answer"},
	"ticket.rate.submit":  {"提交评价", "Send rating"},
	"ticket.rate.choose":  {"请选择一项评价。", "Choose a rating."},
	"ticket.rated":        {"感谢您的评价。", "Thank you for your rating."},
	"ticket.kiosk":        {"此工单在社区服务终端登记，请在终端上查询和评价。", "This case was filed at a kiosk: look it up and rate it there."},
	"ticket.nokey":        {"您正在查看公开进度。评价需使用提交反映后获得的链接。", "This is the public progress. Rating needs the link you got after sending the report."},
	"ticket.merged":       {"此工单已与相同问题的工单合并办理：", "This case is handled together with another one about the same problem:"},
	"ticket.reopened":     {"您的评价为不满意，工单已重新处置。", "You were not satisfied: the case is being handled again."},
	"ticket.new":          {"再反映一个问题", "Report another problem"},
	"ticket.title.accept": {"已受理，工单号 %s", "Received, ticket %s"},

	"plain.received":    {"已受理，正在安排处置人员", "Received: being assigned to an officer"},
	"plain.dispatched":  {"已派单，执法队员即将处置", "Assigned to an officer"},
	"plain.in_progress": {"正在处置", "Being handled"},
	"plain.returned":    {"正在处置", "Being handled"},
	"plain.answered":    {"已答复，请您评价", "Answered: please rate the answer"},
	"plain.rated":       {"已评价", "Rated"},
	"plain.closed":      {"已办结", "Closed"},

	"event.create":   {"受理", "Received"},
	"event.dispatch": {"派单", "Assigned"},
	"event.reassign": {"派单", "Assigned"},
	"event.accept":   {"处置中", "Being handled"},
	"event.answer":   {"已答复", "Answered"},
	"event.rate":     {"已评价", "Rated"},
	"event.reopen":   {"重新处置", "Handled again"},
	"event.close":    {"已办结", "Closed"},
	"event.merge":    {"合并办理", "Merged"},

	"err.title":          {"出错了", "Something went wrong"},
	"err.community":      {"找不到这个社区。请重新扫描社区服务终端或工作室张贴的二维码。", "This community is unknown. Scan the QR code on the kiosk or the workstation poster again."},
	"err.ticket":         {"找不到这个工单号，请检查后重试。", "No case has this ticket number; check it and try again."},
	"err.form":           {"表单无效或已被修改，请重新扫描二维码后填写。", "The form is invalid or was altered; scan the QR code again and fill it in."},
	"err.badrequest":     {"提交的内容无法识别，请返回重试。", "The request could not be read; go back and try again."},
	"err.toolarge":       {"提交的内容太大：照片最多 3 张，每张不超过 15 MB。", "Too much data: at most 3 photos of 15 MB each."},
	"err.ratelimit":      {"提交太频繁了，请稍后再试。", "Too many submissions; please try again later."},
	"err.ratelimit.wait": {"请在 %d 秒后再试。", "Try again in %d seconds."},
	"err.ratelimit.form": {"提交太频繁了，请在 %d 秒后再试。您填写的内容已保留。", "Too many submissions; please try again in %d seconds. What you typed is kept."},
	"err.key":            {"评价链接无效。请使用提交反映后获得的链接。", "This rating link is not valid; use the link you got after sending the report."},
	"err.notrateable":    {"此工单现在不能评价（尚未答复，或已评价）。", "This case cannot be rated now (not answered yet, or rated already)."},
	"err.internal":       {"系统暂时无法处理，请稍后再试。您填写的内容未丢失，可返回后重新提交。", "The system could not handle this now; please try again later. Go back: what you entered is still there."},
	"err.back":           {"返回", "Back"},
})

// T returns the message of key in lang; an unknown key is returned as is
// (a test checks that every key the templates and the code use exists).
func T(lang Lang, key string) string { return messages.T(lang, key) }

// Tf formats the message of key in lang with args.
func Tf(lang Lang, key string, args ...any) string {
	return fmt.Sprintf(T(lang, key), args...)
}

// shanghai is the time zone pages show times in.
var shanghai = time.FixedZone("CST", 8*3600)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(shanghai).Format("2006-01-02 15:04")
}

// pages are the templates that render a whole page with the layout.
var pages = []string{"form", "ticket", "error"}

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"t":    T,
		"tf":   Tf,
		"time": fmtTime,
	}
	out := make(map[string]*template.Template)
	for _, name := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("resident: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}
