package console

import (
	"net/http"
	"strings"

	"github.com/shequ/shequ/hub/htmlpage"
)

// Lang is a console language.
type Lang = htmlpage.Lang

// Languages: Simplified Chinese first (the default), English second.
const (
	Zh = htmlpage.Zh
	En = htmlpage.En
)

// langOf returns the request's language: the cookie, else Chinese.
func langOf(r *http.Request) Lang { return htmlpage.CookieLang(r) }

// messages is the console's one message table: every UI string, Chinese
// first, English second. Keys with a dot are labels of stored values
// ("state.received"); label falls back to the value itself.
var messages = htmlpage.Labels.With(consoleMessages).With(statsMessages).With(accountMessages).With(checkinMessages).With(twoFactorMessages).With(tokenMessages).With(auditMessages).With(remoteMessages).With(releaseMessages)

// consoleMessages are the messages of the console's core pages.
var consoleMessages = htmlpage.Messages{
	"app":                     {"社区城管工作台", "Shequ staff console"},
	"login":                   {"登录", "Log in"},
	"logout":                  {"退出", "Log out"},
	"username":                {"用户名", "Username"},
	"password":                {"密码", "Password"},
	"login.failed":            {"用户名或密码错误，或账号已锁定。", "Wrong username or password, or the account is locked."},
	"lang.other":              {"English", "中文"},
	"nav.cases":               {"工单", "Cases"},
	"nav.tasks":               {"我的任务", "My tasks"},
	"nav.notices":             {"公告", "Notices"},
	"nav.media":               {"宣传媒体", "Media"},
	"nav.fleet":               {"终端", "Kiosks"},
	"nav.newcase":             {"登记工单", "New case"},
	"inbox":                   {"工单列表", "Case inbox"},
	"filter":                  {"筛选", "Filter"},
	"all":                     {"全部", "All"},
	"overdue":                 {"已超期", "Overdue"},
	"duesoon":                 {"即将超期", "Due soon"},
	"supervised":              {"督办", "Supervised"},
	"col.ticket":              {"工单号", "Ticket"},
	"col.state":               {"状态", "State"},
	"col.kind":                {"类型", "Kind"},
	"col.category":            {"类别", "Category"},
	"col.source":              {"来源", "Source"},
	"col.community":           {"社区", "Community"},
	"col.where":               {"位置", "Place"},
	"col.created":             {"受理时间", "Received"},
	"col.due":                 {"办理时限", "Due"},
	"col.closed":              {"办结时间", "Closed"},
	"col.street":              {"街道", "Street"},
	"export":                  {"导出 CSV", "Export CSV"},
	"col.assignee":            {"承办人", "Assignee"},
	"col.phone":               {"联系电话", "Phone"},
	"col.description":         {"问题描述", "Description"},
	"col.rating":              {"评价", "Rating"},
	"col.kiosk":               {"终端", "Kiosk"},
	"col.online":              {"在线", "Online"},
	"col.lastseen":            {"最后在线", "Last seen"},
	"col.version":             {"软件版本", "Software"},
	"col.content":             {"内容版本", "Content version"},
	"col.outbox":              {"待发送", "Outbox"},
	"col.title":               {"标题", "Title"},
	"col.status":              {"状态", "Status"},
	"col.priority":            {"级别", "Priority"},
	"col.targets":             {"发布范围", "Targets"},
	"col.from":                {"开始", "From"},
	"col.until":               {"结束", "Until"},
	"col.file":                {"文件", "File"},
	"col.progress":            {"进度", "Progress"},
	"col.sent":                {"已下发", "Sent"},
	"col.held":                {"已接收", "Held"},
	"col.shown":               {"已展示", "Shown"},
	"col.when":                {"时间", "When"},
	"col.who":                 {"操作人", "By"},
	"col.action":              {"操作", "Action"},
	"col.note":                {"说明", "Note"},
	"none":                    {"暂无", "None"},
	"next":                    {"下一页", "Next page"},
	"yes":                     {"是", "Yes"},
	"no":                      {"否", "No"},
	"masked":                  {"（已隐藏）", "(hidden)"},
	"timeline":                {"处理记录", "Timeline"},
	"work":                    {"工作记录", "Work records"},
	"work.add":                {"添加工作记录", "Add a work record"},
	"work.note":               {"工作内容", "What was done"},
	"work.photos":             {"现场照片（最多 6 张）", "Photos (up to 6)"},
	"work.saved":              {"工作记录已保存。", "Work record saved."},
	"complainants":            {"反映人", "Complainants"},
	"act.title":               {"办理", "Handle"},
	"act.officer":             {"承办队员", "Officer"},
	"act.note":                {"意见/理由", "Note / reason"},
	"act.answer":              {"答复内容（将告知反映人）", "Answer (shown to the resident)"},
	"act.rating":              {"评价结果", "Rating"},
	"act.done":                {"已办理。", "Done."},
	"merge":                   {"并单", "Merge"},
	"merge.help":              {"以下工单与本单同社区、同类别、同楼栋，可并入本单：", "These cases share this case's community, category and building and can be merged into it:"},
	"merge.do":                {"并入本单", "Merge into this case"},
	"newcase":                 {"登记工单", "New case"},
	"newcase.created":         {"工单已登记：", "Case filed: "},
	"find":                    {"查找", "Find"},
	"find.placeholder":        {"工单号或回执查询码", "Ticket number or receipt query code"},
	"find.invalid":            {"请输入完整的工单号（如 261127-K-SANGCHENG-01-0007）或回执上的查询码（如 2611270007）。", "Enter a whole ticket number (e.g. 261127-K-SANGCHENG-01-0007) or the query code on the receipt (e.g. 2611270007)."},
	"find.none":               {"未找到“%s”对应的工单，或该工单不在您的范围内。", "No case %q, or it is outside your area."},
	"find.many":               {"查询码“%s”对应 %d 个工单（不同终端同日同号）。", "Query code %q names %d cases (the same day and number at different kiosks)."},
	"newcase.err.description": {"请填写问题描述。", "Please describe the problem."},
	"newcase.err.phone":       {"电话号码格式不对：请填写 5 到 20 位数字（如 13800138000 或 02112345678）。", "The phone number is not valid: 5 to 20 digits (e.g. 13800138000 or 02112345678)."},
	"where.building":          {"楼号", "Building"},
	"where.unit":              {"单元", "Unit"},
	"where.room":              {"室", "Room"},
	"submit":                  {"提交", "Submit"},
	"notices":                 {"公告管理", "Notices"},
	"notice.new":              {"发布公告", "Publish a notice"},
	"notice.body":             {"正文", "Body"},
	"notice.created":          {"公告已发布。", "Notice published."},
	"notice.withdraw":         {"撤回", "Withdraw"},
	"notice.withdrawn":        {"公告已撤回。", "Notice withdrawn."},
	"notice.delivery":         {"送达情况", "Delivery"},
	"notice.targets":          {"发布范围（可多选）", "Targets (pick one or more)"},
	"glyphs.missing":          {"以下字符在自助终端上无法显示：", "The kiosks cannot display these characters: "},
	"notice.err.title":        {"请填写标题。", "Please give the notice a title."},
	"notice.err.time":         {"时间格式不对，请用日期时间选择器重新选择。", "A time is not valid; please pick it again."},
	"notice.err.until":        {"结束时间须晚于开始时间（未填开始时间则为现在）。", "The end must be after the start (now, if no start is given)."},
	"notice.err.targets":      {"请至少选择一个发布范围。", "Please choose at least one target."},
	"glyphs.rephrase":         {"。请换一种写法（如改用常用字）后再提交，已填写的内容已保留。", ". Please rephrase (for example with a common character) and submit again; what you typed is kept."},
	"media":                   {"宣传媒体", "Media"},
	"media.upload":            {"上传图片或视频", "Upload an image or video"},
	"media.uploading":         {"正在上传", "Uploading"},
	"media.done":              {"上传完成，正在转码。", "Uploaded; transcoding."},
	"media.failed":            {"上传失败：", "Upload failed: "},
	"fleet":                   {"终端状态", "Kiosk fleet"},
	"fleet.media":             {"终端缓存内容", "Content held by the kiosk"},
	"tasks":                   {"我的任务", "My tasks"},
	"tasks.none":              {"暂无待办任务。", "No open tasks."},
	"checkin":                 {"工作室签到", "Workstation check-in"},
	"checkin.confirm":         {"确认签到", "Confirm check-in"},
	"checkin.kind":            {"签到类型", "Type"},
	"checkin.done":            {"签到成功：", "Checked in: "},
	"checkin.bad":             {"签到码无效或已过期，请在终端上重新扫码。", "The check-in code is invalid or expired; scan the kiosk again."},
	"checkin.recent":          {"最近签到", "Recent check-ins"},
	"checkin.visit":           {"走访", "Visit"},
	"checkin.patrol":          {"巡查", "Patrol"},
	"err.title":               {"出错了", "Something went wrong"},
	"err.notfound":            {"找不到该页面或工单，或您无权查看。", "Not found, or you may not see it."},
	"err.forbidden":           {"您的角色不能进行此操作。", "Your role may not do this."},
	"err.invalid":             {"填写有误：", "Please check the form: "},
	"err.transition":          {"当前状态下不能进行此操作：", "Not possible in the case's current state: "},
	"err.internal":            {"系统错误，请稍后再试。", "Internal error; please try again later."},
	"back":                    {"返回", "Back"},

	"state.received":    {"已受理", "Received"},
	"state.dispatched":  {"已派单", "Dispatched"},
	"state.in_progress": {"处置中", "In progress"},
	"state.answered":    {"已答复", "Answered"},
	"state.rated":       {"已评价", "Rated"},
	"state.closed":      {"已办结", "Closed"},
	"state.returned":    {"已退单", "Returned"},

	"action.create":        {"受理", "Received"},
	"action.dispatch":      {"派单", "Dispatch"},
	"action.accept":        {"签收", "Accept"},
	"action.return":        {"退单", "Return"},
	"action.reassign":      {"改派", "Reassign"},
	"action.reject_return": {"驳回退单", "Reject the return"},
	"action.send_back":     {"退回待派", "Send back for dispatch"},
	"action.answer":        {"答复", "Answer"},
	"action.rate":          {"评价", "Rate"},
	"action.reopen":        {"重新处置", "Reopen"},
	"action.close":         {"办结", "Close"},
	"action.supervise":     {"督办", "Supervise"},
	"action.escalate":      {"超期督办", "Escalated"},
	"action.merge":         {"并单", "Merged"},
	"action.merge_in":      {"并入", "Merged in"},
	"action.work":          {"工作记录", "Work record"},

	"source.kiosk":   {"社区终端", "Kiosk"},
	"source.qrcode":  {"城管码", "城管码 QR"},
	"source.patrol":  {"巡查发现", "Patrol"},
	"source.partner": {"共建单位", "Partner"},
	"source.hotline": {"12345 热线", "12345 hotline"},

	"role.bureau_admin":   {"市局管理员", "Bureau admin"},
	"role.district_admin": {"区局管理员", "District admin"},
	"role.squad_leader":   {"中队长", "Squad leader"},
	"role.officer":        {"队员", "Officer"},
	"role.partner":        {"共建单位", "Partner"},
	"role.technician":     {"运维人员", "Technician"},
	"role.system":         {"系统", "System"},
	"role.resident":       {"居民", "Resident"},

	"ncat.publicity":   {"宣传", "Publicity"},
	"ncat.law_case":    {"以案释法", "Law cases"},
	"ncat.enforcement": {"专项执法行动", "Enforcement"},
	"ncat.event":       {"活动", "Event"},
	"ncat.station":     {"工作室信息", "Workstation"},

	"priority.normal":    {"普通", "Normal"},
	"priority.important": {"重要", "Important"},
	"priority.urgent":    {"紧急（全屏提示）", "Urgent (takes over the screen)"},

	"status.scheduled":   {"待生效", "Scheduled"},
	"status.active":      {"生效中", "Active"},
	"status.expired":     {"已过期", "Expired"},
	"status.withdrawn":   {"已撤回", "Withdrawn"},
	"status.uploaded":    {"已上传", "Uploaded"},
	"status.transcoding": {"转码中", "Transcoding"},
	"status.ready":       {"可用", "Ready"},
	"status.failed":      {"失败", "Failed"},
	"nav.stats":          {"数据分析", "Analysis"},
	"nav.checkins":       {"驻点签到", "Check-ins"},
	"nav.accounts":       {"账号管理", "Accounts"},
	"nav.me":             {"修改密码", "Change password"},
}

// T returns the message of key in lang; an unknown key is returned as is
// (a test checks that every key the templates use exists).
func T(lang Lang, key string) string { return messages.T(lang, key) }

// label returns the label of a stored value ("state", "received"), or the
// value itself when the table has none.
func label(lang Lang, group, value string) string { return messages.Label(lang, group, value) }

// keysUsed lists the message keys a template source refers to with
// {{t $.Lang "key"}}, for the test that every one exists.
func keysUsed(src string) []string {
	var out []string
	for {
		i := strings.Index(src, `t $.Lang "`)
		if i < 0 {
			return out
		}
		src = src[i+len(`t $.Lang "`):]
		j := strings.IndexByte(src, '"')
		if j < 0 {
			return out
		}
		out = append(out, src[:j])
		src = src[j:]
	}
}
