package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/remote"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Remote sends commands to kiosks and keeps their results
// (hub/remote.Service).
type Remote interface {
	Send(ctx context.Context, kiosk string, action protocol.Action) (remote.Command, error)
	Commands(ctx context.Context, kiosk string, limit int) ([]remote.Command, error)
	Screenshot(ctx context.Context, kiosk string) (store.ScreenshotRecord, error)
}

var _ Remote = (*remote.Service)(nil)

// kioskCommands is how many commands the kiosk page lists.
const kioskCommands = 20

// remoteMessages are the messages of the fleet pages' remote actions.
var remoteMessages = htmlpage.Messages{
	"cmd.actions":    {"远程操作", "Remote actions"},
	"cmd.help":       {"截屏只在首页、公告和轮播画面进行；居民正在填写或查询时终端会拒绝截屏，以保护居民隐私。", "A screenshot is taken only on the home, notice and attract screens; while a resident is filling in or looking something up the kiosk refuses, to protect their privacy."},
	"cmd.sent":       {"命令已发出，终端答复后显示结果。", "Command sent; the result shows once the kiosk answers."},
	"cmd.notsent":    {"命令未能发出（消息服务器不可用），请稍后再试。", "The command could not be sent (the message broker is unavailable); try again later."},
	"cmd.history":    {"最近的远程操作", "Recent remote actions"},
	"cmd.screenshot": {"最新截屏", "Latest screenshot"},
	"cmd.noshot":     {"还没有截屏。", "No screenshot yet."},
	"cmd.taken":      {"截屏时间", "Taken at"},
	"cmd.by":         {"操作人", "By"},
	"cmd.result":     {"结果", "Result"},
	"cmd.time":       {"时间", "Time"},

	"cmd.screenshot_btn":    {"截屏 Screenshot", "截屏 Screenshot"},
	"cmd.restart_ui_btn":    {"重启界面 Restart UI", "重启界面 Restart UI"},
	"cmd.restart_agent_btn": {"重启代理 Restart agent", "重启代理 Restart agent"},

	"raction.screenshot":    {"截屏", "Screenshot"},
	"raction.restart_ui":    {"重启界面", "Restart UI"},
	"raction.restart_agent": {"重启代理", "Restart agent"},

	"cstatus.sent":       {"已发出，等待答复", "Sent, waiting"},
	"cstatus.unanswered": {"未答复（终端离线或已过期）", "No answer (kiosk offline, or expired)"},
	"cstatus.ok":         {"已完成", "Done"},
	"cstatus.refused":    {"终端拒绝", "Refused by the kiosk"},
	"cstatus.failed":     {"失败", "Failed"},

	"aact.kiosk.command":        {"远程操作终端", "Remote action sent to a kiosk"},
	"aact.kiosk.command_result": {"终端答复远程操作", "Kiosk answered a remote action"},
}

// registerRemote adds the remote actions, for the roles that see the
// fleet, on kiosks within their node.
func (c *Console) registerRemote(m Mux) {
	if c.cfg.Remote == nil {
		return
	}
	roles := []accounts.Role{accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleTechnician}
	c.page(m, "POST /fleet/{id}/commands", c.sendCommand, roles...)
	c.page(m, "GET /fleet/{id}/screenshot", c.screenshot, roles...)
}

// kioskInReach returns the kiosk of the request's {id} if the account may
// see it, else an error wrapping errNotFound.
func (c *Console) kioskInReach(r *http.Request) (string, error) {
	p, _ := c.principal(r)
	id := r.PathValue("id")
	k, ok := c.cfg.Tree.Kiosk(id)
	if !ok || !p.CanSee(k.Community) {
		return "", fmt.Errorf("%w: kiosk %q", errNotFound, id)
	}
	return id, nil
}

// sendCommand serves POST /fleet/{id}/commands: action=screenshot,
// restart_ui or restart_agent; back to the fleet page or the kiosk page.
func (c *Console) sendCommand(w http.ResponseWriter, r *http.Request) {
	id, err := c.kioskInReach(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: %v", errInvalid, err))
		return
	}
	action := protocol.Action(r.PostForm.Get("action"))
	_, a := c.principal(r)
	_, err = c.cfg.Remote.Send(asAccount(r, a), id, action)
	switch {
	case errors.Is(err, remote.ErrAction):
		c.fail(w, r, fmt.Errorf("%w: %v", errInvalid, err))
		return
	case errors.Is(err, remote.ErrNotSent):
		c.log.Warn("remote command not sent", "kiosk", id, "action", action, "err", err)
		lang := langOf(r)
		c.render(w, r, http.StatusServiceUnavailable, "error", T(lang, "err.title"), T(lang, "cmd.notsent"))
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	back := "/fleet/" + id
	if r.PostForm.Get("back") == "fleet" {
		back = "/fleet"
	}
	http.Redirect(w, r, withOK(back, "cmd.sent"), http.StatusSeeOther)
}

// screenshot serves GET /fleet/{id}/screenshot: the kiosk's latest.
func (c *Console) screenshot(w http.ResponseWriter, r *http.Request) {
	id, err := c.kioskInReach(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sh, err := c.cfg.Remote.Screenshot(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := remote.ServeScreenshot(w, sh); err != nil {
		c.log.Debug("screenshot not sent", "kiosk", id, "err", err)
	}
}

// commandRow is a command as the kiosk page lists it.
type commandRow struct {
	remote.Command
	By string
}

// kioskRemote is the kiosk page's remote part.
type kioskRemote struct {
	Enabled  bool
	Commands []commandRow
	Shot     *store.ScreenshotRecord // without its data; nil if none
}

// remoteOf loads the remote part of a kiosk's page.
func (c *Console) remoteOf(r *http.Request, kiosk string) (kioskRemote, error) {
	var out kioskRemote
	if c.cfg.Remote == nil {
		return out, nil
	}
	out.Enabled = true
	cmds, err := c.cfg.Remote.Commands(r.Context(), kiosk, kioskCommands)
	if err != nil {
		return out, err
	}
	names, err := c.accountNames(r)
	if err != nil {
		return out, err
	}
	lang := langOf(r)
	for _, cm := range cmds {
		out.Commands = append(out.Commands, commandRow{Command: cm, By: actorName(lang, names, cm.RequestedBy)})
	}
	sh, err := c.cfg.Remote.Screenshot(r.Context(), kiosk)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return out, err
	default:
		sh.Data = nil
		out.Shot = &sh
	}
	return out, nil
}

// screenshotQuery makes the image URL change with each screenshot, so a
// browser never shows an older one from its cache.
func screenshotQuery(sh *store.ScreenshotRecord) string {
	return "c=" + strings.ReplaceAll(sh.Command, "-", "")
}
