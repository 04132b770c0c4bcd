package i18n

import (
	"fmt"

	"github.com/shequ/shequ/protocol"
)

// UI message keys.
const (
	AppTitle         Key = "app.title"
	StationUnknown   Key = "station.unknown"
	Connecting       Key = "status.connecting"
	LangToggle       Key = "lang.toggle"
	Hours            Key = "station.hours"
	Contact          Key = "station.contact"
	DutyOfficer      Key = "station.duty_officer"
	Address          Key = "station.address"
	NoNotices        Key = "notice.none"
	NoticeTapHint    Key = "notice.tap_hint"
	QRCaption        Key = "qr.caption"
	GiveFeedback     Key = "feedback.start"
	GiveFeedbackHint Key = "feedback.start_hint"
	UrgentTitle      Key = "urgent.title"
	Back             Key = "nav.back"
	Cancel           Key = "nav.cancel"
	Next             Key = "nav.next"
	Skip             Key = "nav.skip"
	Done             Key = "nav.done"
	Delete           Key = "keypad.delete"
	Clear            Key = "keypad.clear"
	StepKind         Key = "step.kind"
	StepCategory     Key = "step.category"
	StepBuilding     Key = "step.building"
	StepUnit         Key = "step.unit"
	StepRoom         Key = "step.room"
	StepPhone        Key = "step.phone"
	StepDescription  Key = "step.description"
	StepConfirm      Key = "step.confirm"
	StepReceipt      Key = "step.receipt"
	PhoneHint        Key = "phone.hint"
	DescriptionHint  Key = "description.hint"
	FreeTextHint     Key = "description.free_text"
	FieldKind        Key = "field.kind"
	FieldCategory    Key = "field.category"
	FieldWhere       Key = "field.where"
	FieldPhone       Key = "field.phone"
	FieldDescription Key = "field.description"
	UnitBuilding     Key = "where.building"
	UnitUnit         Key = "where.unit"
	UnitRoom         Key = "where.room"
	NotGiven         Key = "field.not_given"
	Submit           Key = "confirm.submit"
	Submitting       Key = "confirm.submitting"
	ReceiptThanks    Key = "receipt.thanks"
	ReceiptTicket    Key = "receipt.ticket"
	ReceiptQR        Key = "receipt.qr"
	ErrPhone         Key = "err.phone"
	ErrSubmit        Key = "err.submit"
	ErrInvalidForm   Key = "err.form"

	// Setup screen (device enrolment by claim code).
	SetupTitle      Key = "setup.title"
	SetupHint       Key = "setup.hint"
	Enrol           Key = "setup.enrol"
	Enrolling       Key = "setup.enrolling"
	ErrEnrolCode    Key = "err.enrol_code"     // 400: bad code or no hub configured
	ErrEnrolRefused Key = "err.enrol_refused"  // 403: the hub refused the code
	ErrEnrolled     Key = "err.enrol_enrolled" // 409: already enrolled
	ErrEnrolHub     Key = "err.enrol_hub"      // 502/503: hub unreachable
	ErrEnrolAgent   Key = "err.enrol_agent"    // the agent did not answer
	ErrEnrol        Key = "err.enrol"          // anything else

	// Attract loop.
	AttractHint Key = "attract.hint"

	// Case lookup and rating.
	CheckProgress     Key = "cases.start"
	CheckProgressHint Key = "cases.start_hint"
	StepLookup        Key = "cases.step_lookup"
	LookupHint        Key = "cases.lookup_hint"
	LookupButton      Key = "cases.lookup"
	LookingUp         Key = "cases.looking_up"
	ReceiptQueryCode  Key = "receipt.query_code"
	ReceiptQueryHint  Key = "receipt.query_hint"
	CaseTitle         Key = "cases.title"
	CaseState         Key = "cases.state"
	CaseAnswer        Key = "cases.answer"
	CaseNoAnswer      Key = "cases.no_answer"
	CaseAnsweredAt    Key = "cases.answered_at"
	CaseRatePrompt    Key = "cases.rate_prompt"
	CaseYourRating    Key = "cases.your_rating"
	CaseStale         Key = "cases.stale"
	RateThanks        Key = "cases.rate_thanks"
	RateThanksHint    Key = "cases.rate_thanks_hint"
	ErrQueryCode      Key = "err.query_code"
	ErrCaseNotFound   Key = "err.case_not_found"
	ErrCaseLookup     Key = "err.case_lookup"
	ErrNotRateable    Key = "err.not_rateable"
	ErrRate           Key = "err.rate"

	// Staff check-in.
	StaffCheckin   Key = "checkin.start"
	CheckinTitle   Key = "checkin.title"
	CheckinHint    Key = "checkin.hint"
	CheckinExpires Key = "checkin.expires"
	CheckinLoading Key = "checkin.loading"
	ErrCheckin     Key = "err.checkin"
)

// CaseStateKey is the plain-words label of a case state shown to
// residents: the hub's internal steps (dispatched, in progress, returned)
// all read 处理中.
func CaseStateKey(s protocol.CaseState) Key { return Key("case_state." + string(s)) }

// RatingKey is the label key of a rating.
func RatingKey(r protocol.Rating) Key { return Key("rating." + string(r)) }

var messages = map[Key]Text{
	AppTitle:         {"社区城管工作室", "Community City-Management Station"},
	StationUnknown:   {"社区城管工作室", "Community City-Management Station"},
	Connecting:       {"正在连接…", "Connecting…"},
	LangToggle:       {"English", "中文"},
	Hours:            {"开放时间", "Opening hours"},
	Contact:          {"联系电话", "Contact"},
	DutyOfficer:      {"今日值班", "Officer on duty"},
	Address:          {"地址", "Address"},
	NoNotices:        {"暂无公告", "No notices at the moment"},
	NoticeTapHint:    {"点击查看详情", "Tap to read more"},
	AttractHint:      {"轻触屏幕 · 我要反映", "Touch the screen to report a problem"},
	QRCaption:        {"微信扫码 · 城管码", "Scan the City-Management code"},
	GiveFeedback:     {"我要反映", "Give feedback"},
	GiveFeedbackHint: {"投诉 · 咨询 · 求助 · 建议", "Complaint · Question · Help · Suggestion"},
	UrgentTitle:      {"紧急通知", "URGENT NOTICE"},
	Back:             {"返回", "Back"},
	Cancel:           {"取消", "Cancel"},
	Next:             {"下一步", "Next"},
	Skip:             {"跳过", "Skip"},
	Done:             {"完成", "Done"},
	Delete:           {"删除", "Delete"},
	Clear:            {"清空", "Clear"},
	StepKind:         {"您要办理什么？", "What would you like to do?"},
	StepCategory:     {"是哪一类问题？", "What is it about?"},
	StepBuilding:     {"在几号楼？", "Which building?"},
	StepUnit:         {"几单元？", "Which unit?"},
	StepRoom:         {"几室？", "Which room?"},
	StepPhone:        {"联系电话（可不填）", "Phone number (optional)"},
	StepDescription:  {"请选择情况描述（可多选）", "Describe it (tap any that apply)"},
	StepConfirm:      {"请确认您的反映", "Please check and send"},
	StepReceipt:      {"已收到您的反映", "We have received your feedback"},
	PhoneHint:        {"方便我们回访您", "So that we can call you back"},
	DescriptionHint:  {"也可以补充文字", "You may also add a few words"},
	FreeTextHint:     {"补充说明（可不填）", "More details (optional)"},
	FieldKind:        {"类型", "Type"},
	FieldCategory:    {"问题", "Problem"},
	FieldWhere:       {"地点", "Where"},
	FieldPhone:       {"电话", "Phone"},
	FieldDescription: {"描述", "Description"},
	UnitBuilding:     {"号楼", "Bldg"},
	UnitUnit:         {"单元", "Unit"},
	UnitRoom:         {"室", "Room"},
	NotGiven:         {"未填写", "Not given"},
	Submit:           {"确认提交", "Send"},
	Submitting:       {"正在提交…", "Sending…"},
	ReceiptThanks:    {"感谢您的反映，我们会尽快处理。", "Thank you. We will look into it soon."},
	ReceiptTicket:    {"受理编号", "Ticket number"},
	ReceiptQR:        {"扫码查看处理进度", "Scan to follow progress"},
	ErrPhone:         {"电话号码应为5到20位数字", "A phone number has 5 to 20 digits"},
	ErrSubmit:        {"提交失败，请稍后再试或联系工作人员", "Could not send. Please try again or ask the staff"},
	ErrInvalidForm:   {"信息不完整，请返回修改", "Something is missing, please go back"},

	SetupTitle:      {"本机尚未注册", "This kiosk is not enrolled"},
	SetupHint:       {"请输入技术人员的12位认领码", "Enter the technician's 12-digit claim code"},
	Enrol:           {"注册", "Enrol"},
	Enrolling:       {"正在注册…", "Enrolling…"},
	ErrEnrolCode:    {"认领码格式不对，或本机未配置服务器地址", "Invalid claim code, or no hub is configured on this kiosk"},
	ErrEnrolRefused: {"服务器拒绝了此认领码（无效、已使用、已过期或不属于本社区）", "The hub refused this claim code (unknown, used, expired or for another community)"},
	ErrEnrolled:     {"本机已经注册", "This kiosk is already enrolled"},
	ErrEnrolHub:     {"无法连接服务器，请检查网络后重试", "Cannot reach the hub. Check the network and try again"},
	ErrEnrolAgent:   {"本机服务没有响应，请稍后重试", "The kiosk's agent is not responding. Try again shortly"},
	ErrEnrol:        {"注册失败，请重试", "Enrolment failed. Please try again"},

	CheckProgress:     {"查询进度", "Check progress"},
	CheckProgressHint: {"输入回执上的查询码", "Enter the query code on your receipt"},
	StepLookup:        {"请输入查询码", "Enter your query code"},
	LookupHint:        {"查询码在回执上，共10位以上数字", "The query code is on your receipt: 10 or more digits"},
	LookupButton:      {"查询", "Look up"},
	LookingUp:         {"正在查询…", "Looking up…"},
	ReceiptQueryCode:  {"查询码", "Query code"},
	ReceiptQueryHint:  {"凭查询码可在本机“查询进度”查看答复并评价", "Use the query code under “Check progress” on this kiosk to see the answer and rate it"},
	CaseTitle:         {"办理进度", "Progress"},
	CaseState:         {"当前状态", "Status"},
	CaseAnswer:        {"答复", "Answer"},
	CaseNoAnswer:      {"正在办理，答复后可在此查看。", "Being handled. The answer will appear here."},
	CaseAnsweredAt:    {"答复时间", "Answered"},
	CaseRatePrompt:    {"您对答复满意吗？", "Are you satisfied with the answer?"},
	CaseYourRating:    {"您的评价", "Your rating"},
	CaseStale:         {"本机暂时离线，信息可能不是最新", "This kiosk is offline: the information may be out of date"},
	RateThanks:        {"感谢您的评价！", "Thank you for your rating!"},
	RateThanksHint:    {"您的意见将用于改进我们的工作。", "Your opinion helps us improve our work."},
	ErrQueryCode:      {"查询码应为10位以上数字，请核对回执", "A query code has 10 or more digits; please check your receipt"},
	ErrCaseNotFound:   {"未找到该查询码，请核对回执", "No case found for this code; please check your receipt"},
	ErrCaseLookup:     {"查询失败，请稍后再试", "Could not look it up. Please try again"},
	ErrNotRateable:    {"该事项当前不可评价", "This case cannot be rated now"},
	ErrRate:           {"评价提交失败，请稍后再试", "Could not send your rating. Please try again"},

	StaffCheckin:   {"工作人员签到", "Staff check-in"},
	CheckinTitle:   {"工作人员签到", "Staff check-in"},
	CheckinHint:    {"请用手机扫描二维码完成签到，二维码每分钟更新", "Scan the code with your phone to check in. It changes every minute"},
	CheckinExpires: {"有效至", "Valid until"},
	CheckinLoading: {"正在生成签到码…", "Making the check-in code…"},
	ErrCheckin:     {"无法生成签到码，请联系技术人员", "Cannot make a check-in code. Please call a technician"},

	CaseStateKey(protocol.CaseReceived):   {"已受理", "Received"},
	CaseStateKey(protocol.CaseDispatched): {"处理中", "Being handled"},
	CaseStateKey(protocol.CaseInProgress): {"处理中", "Being handled"},
	CaseStateKey(protocol.CaseReturned):   {"处理中", "Being handled"},
	CaseStateKey(protocol.CaseAnswered):   {"已答复", "Answered"},
	CaseStateKey(protocol.CaseRated):      {"已评价", "Rated"},
	CaseStateKey(protocol.CaseClosed):     {"已办结", "Closed"},

	RatingKey(protocol.RatingSatisfied):          {"满意", "Satisfied"},
	RatingKey(protocol.RatingBasicallySatisfied): {"基本满意", "Basically satisfied"},
	RatingKey(protocol.RatingNotSatisfied):       {"不满意", "Not satisfied"},

	KindKey(protocol.KindComplaint):    {"投诉", "Complaint"},
	KindKey(protocol.KindConsultation): {"咨询", "Question"},
	KindKey(protocol.KindHelp):         {"求助", "Ask for help"},
	KindKey(protocol.KindSuggestion):   {"建议", "Suggestion"},

	CategoryKey(protocol.CatIllegalConstruction): {"违法搭建", "Illegal construction"},
	CategoryKey(protocol.CatLoadBearing):         {"破坏房屋承重结构", "Damage to load-bearing structure"},
	CategoryKey(protocol.CatChangeOfUse):         {"擅自改变物业使用性质", "Unauthorised change of use"},
	CategoryKey(protocol.CatFacade):              {"破坏房屋外貌", "Damage to building facade"},
	CategoryKey(protocol.CatIllegalRenting):      {"房屋违规租赁", "Illegal renting"},
	CategoryKey(protocol.CatGreenSpace):          {"占绿毁绿", "Damage to green space"},
	CategoryKey(protocol.CatPropertyDuty):        {"物业未履职尽责", "Property management not doing its job"},
	CategoryKey(protocol.CatOther):               {"其他", "Other"},

	NoticeCategoryKey(protocol.NoticePublicity):   {"宣传", "Publicity"},
	NoticeCategoryKey(protocol.NoticeLawCase):     {"以案释法", "Case explained"},
	NoticeCategoryKey(protocol.NoticeEnforcement): {"专项执法行动", "Enforcement campaign"},
	NoticeCategoryKey(protocol.NoticeEvent):       {"活动", "Event"},
	NoticeCategoryKey(protocol.NoticeStation):     {"工作室信息", "Station information"},

	PriorityKey(protocol.PriorityNormal):    {"一般", "Normal"},
	PriorityKey(protocol.PriorityImportant): {"重要", "Important"},
	PriorityKey(protocol.PriorityUrgent):    {"紧急", "Urgent"},

	"phrase.illegal_construction.1": {"楼顶或阳台搭建", "Structure built on the roof or balcony"},
	"phrase.illegal_construction.2": {"占用公共通道搭建", "Structure blocking a shared passage"},
	"phrase.illegal_construction.3": {"正在施工中", "Building work is going on now"},
	"phrase.load_bearing.1":         {"拆改承重墙", "Load-bearing wall removed or cut"},
	"phrase.load_bearing.2":         {"装修噪音和震动大", "Loud noise and shaking from renovation"},
	"phrase.load_bearing.3":         {"墙体出现裂缝", "Cracks appeared in the walls"},
	"phrase.change_of_use.1":        {"住宅改作经营场所", "Home turned into a shop or business"},
	"phrase.change_of_use.2":        {"车库或地下室住人", "People living in a garage or basement"},
	"phrase.change_of_use.3":        {"群租", "Overcrowded group renting"},
	"phrase.facade.1":               {"擅自开门开窗", "Doors or windows cut without permission"},
	"phrase.facade.2":               {"外墙被改动或涂改", "Outside wall altered or painted"},
	"phrase.facade.3":               {"安装防盗窗或雨棚", "Window bars or awnings installed"},
	"phrase.illegal_renting.1":      {"一房多人群租", "Too many tenants in one flat"},
	"phrase.illegal_renting.2":      {"分隔出租", "Flat divided into small rooms to let"},
	"phrase.illegal_renting.3":      {"租客扰民", "Tenants disturbing neighbours"},
	"phrase.green_space.1":          {"绿地被占用", "Green space taken over"},
	"phrase.green_space.2":          {"毁绿种菜", "Plants removed to grow vegetables"},
	"phrase.green_space.3":          {"树木被砍伐", "Trees cut down"},
	"phrase.property_duty.1":        {"物业不制止违法行为", "Property management does not stop violations"},
	"phrase.property_duty.2":        {"公共区域无人管理", "Shared areas are neglected"},
	"phrase.property_duty.3":        {"垃圾清运不及时", "Rubbish is not collected on time"},
	"phrase.other.1":                {"希望工作人员联系我", "Please ask an officer to contact me"},
	"phrase.other.2":                {"情况比较紧急", "It is fairly urgent"},
	"phrase.other.3":                {"已多次反映", "I have reported this before"},
}

// phrasesPerCategory is how many "phrase.<category>.<n>" keys each
// category has in the table.
const phrasesPerCategory = 3

func categoryPhrases(c protocol.FeedbackCategory) []Key {
	keys := make([]Key, 0, phrasesPerCategory)
	for i := 1; i <= phrasesPerCategory; i++ {
		keys = append(keys, Key(fmt.Sprintf("phrase.%s.%d", c, i)))
	}
	return keys
}
