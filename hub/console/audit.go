package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
)

// auditPage is the number of entries the audit log page shows at once.
const auditPage = 100

// auditPages are the audit log's page and its layout.
var auditPages = map[string]string{"audit": "desk"}

// auditMessages are the audit log page's messages.
var auditMessages = htmlpage.Messages{
	"audit":        {"审计日志", "Audit log"},
	"audit.help":   {"全市每一项变更：谁、何时、做了什么、改前改后（不含密码、令牌等机密）。", "Every change in the city: who, when, what, before and after (never a secret)."},
	"audit.object": {"对象", "Object"},
	"audit.older":  {"更早的记录", "Older entries"},
	"audit.bad":    {"页码参数不对。", "The page parameter is not valid."},

	"aact.media.upload":       {"上传媒体", "Media uploaded"},
	"aact.playlist.create":    {"创建播放列表", "Playlist made"},
	"aact.playlist.withdraw":  {"撤回播放列表", "Playlist withdrawn"},
	"aact.claim.create":       {"生成认领码", "Claim code made"},
	"aact.device.revoke":      {"吊销终端", "Device revoked"},
	"aact.open311_key.create": {"生成 Open311 密钥", "Open311 key made"},
	"aact.open311_key.revoke": {"吊销 Open311 密钥", "Open311 key revoked"},
	"aact.keys.rotate":        {"轮换签名密钥", "Signing key rotated"},
	"aact.retention.phones":   {"清除过期电话号码", "Old phone numbers forgotten"},
	"aact.checkin.visit":      {"驻点签到", "Visit checked in"},
	"aact.checkin.patrol":     {"巡查签到", "Patrol checked in"},
}

// registerAudit adds the audit log page, for bureau admins: the log spans
// the whole city, and its entries are not scoped by org node.
func (c *Console) registerAudit(m Mux) {
	c.page(m, "GET /audit", c.auditLog, accounts.RoleBureauAdmin)
}

// auditRow is one entry as the audit log page shows it.
type auditRow struct {
	historyRow
	Object     string
	ObjectLink string // the object's console page, when it has one
}

// auditData is the audit log page's data.
type auditData struct {
	Rows  []auditRow
	Older template.URL // the query of the next (older) page
}

// auditLog serves GET /audit?before=SEQ: the newest entries, or those
// older than SEQ.
func (c *Console) auditLog(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			c.render(w, r, http.StatusBadRequest, "error", T(lang, "err.title"), T(lang, "audit.bad"))
			return
		}
		before = n
	}
	changes, err := c.cfg.Accounts.RecentChanges(r.Context(), before, auditPage)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names, err := c.accountNames(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var d auditData
	for _, ch := range changes {
		row := auditRow{historyRow: historyRow{At: ch.At, Actor: actorName(lang, names, ch.Actor), Action: label(lang, "aact", ch.Action)},
			Object: ch.Object}
		for _, f := range ch.Fields {
			row.Fields = append(row.Fields, accounts.FieldChange{Field: label(lang, "field", f.Field),
				Before: c.fieldValue(lang, f.Field, f.Before), After: c.fieldValue(lang, f.Field, f.After)})
		}
		kind, id, _ := strings.Cut(ch.Object, ":")
		switch kind {
		case "account":
			row.Object, row.ObjectLink = actorName(lang, names, ch.Object), "/accounts/"+url.PathEscape(id)
		case "notice":
			row.ObjectLink = "/notices/" + url.PathEscape(id)
		case "kiosk":
			row.ObjectLink = "/fleet/" + url.PathEscape(id)
		case "rollout":
			row.ObjectLink = "/releases/rollouts/" + url.PathEscape(id)
		case "release":
			row.ObjectLink = "/releases"
		}
		d.Rows = append(d.Rows, row)
	}
	if len(changes) == auditPage {
		d.Older = template.URL("before=" + strconv.FormatInt(changes[len(changes)-1].Seq, 10))
	}
	c.render(w, r, http.StatusOK, "audit", T(lang, "audit"), d)
}
