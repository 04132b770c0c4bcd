package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/store"
)

// MaxExport bounds the rows of one CSV export.
const MaxExport = 100_000

// exportColumns are the CSV's columns: a message key for the header and
// the cell of a case.
var exportColumns = []struct {
	key  string
	cell func(c cases.Case, lang Lang, name func(string) string) string
}{
	{"col.ticket", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Ticket }},
	{"col.state", func(c cases.Case, l Lang, _ func(string) string) string { return label(l, "state", c.State) }},
	{"col.source", func(c cases.Case, l Lang, _ func(string) string) string { return label(l, "source", c.Source) }},
	{"col.kind", func(c cases.Case, l Lang, _ func(string) string) string { return label(l, "kind", c.Kind) }},
	{"col.category", func(c cases.Case, l Lang, _ func(string) string) string { return label(l, "category", c.Category) }},
	{"col.community", func(c cases.Case, _ Lang, n func(string) string) string { return n(c.Community) }},
	{"col.street", func(c cases.Case, _ Lang, n func(string) string) string { return n(c.Street) }},
	{"where.building", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Building }},
	{"where.unit", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Unit }},
	{"where.room", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Room }},
	{"col.description", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Description }},
	{"col.phone", func(c cases.Case, _ Lang, _ func(string) string) string { return c.Phone }},
	{"col.created", func(c cases.Case, _ Lang, _ func(string) string) string { return csvTime(c.CreatedAt) }},
	{"col.due", func(c cases.Case, _ Lang, _ func(string) string) string { return csvTime(c.DueAt) }},
	{"col.closed", func(c cases.Case, _ Lang, _ func(string) string) string { return csvTime(c.ClosedAt) }},
	{"supervised", func(c cases.Case, l Lang, _ func(string) string) string {
		if c.Supervised {
			return T(l, "yes")
		}
		return T(l, "no")
	}},
	{"col.rating", func(c cases.Case, l Lang, _ func(string) string) string { return label(l, "rating", c.Rating) }},
}

// csvTime is a time in Shanghai, or an empty cell.
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

// csvSafe defuses a cell a spreadsheet would run as a formula (CSV
// injection): one starting with = + - @ or a control character gets a
// leading apostrophe.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// export writes the cases the inbox filter selects as CSV (UTF-8 with a
// byte-order mark, so spreadsheet programs read the Chinese), masked as
// the inbox shows them, at most MaxExport rows, newest first.
func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	p, a := c.principal(r)
	f, err := parseInbox(r.URL.Query())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if f.After != "" {
		c.fail(w, r, fmt.Errorf("%w: an export has no pages", errInvalid))
		return
	}
	sf, err := c.storeFilter(a, f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sf.Limit = store.MaxCasePage
	lang := langOf(r)
	// Read the first page before writing anything, so an error still gets
	// an error page.
	page, err := c.cfg.Cases.List(r.Context(), sf)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	name := "cases-" + c.cfg.Now().In(shanghai).Format("20060102-1504") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if _, err := w.Write([]byte("\ufeff")); err != nil {
		return
	}
	cw := csv.NewWriter(w)
	row := make([]string, len(exportColumns))
	for i, col := range exportColumns {
		row[i] = T(lang, col.key)
	}
	if err := cw.Write(row); err != nil {
		return
	}
	n := 0
	for len(page) > 0 && n < MaxExport {
		for _, cs := range page {
			if n == MaxExport {
				break
			}
			v := cases.View(cs, p)
			for i, col := range exportColumns {
				row[i] = csvSafe(col.cell(v, lang, c.nodeName))
			}
			if err := cw.Write(row); err != nil {
				return
			}
			n++
		}
		if len(page) < sf.Limit {
			break
		}
		last := page[len(page)-1]
		sf.After = &last
		if page, err = c.cfg.Cases.List(r.Context(), sf); err != nil {
			// The reply has started: cut it short so the file is visibly
			// incomplete rather than silently truncated.
			c.log.Error("export", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		c.log.Debug("writing an export", "err", err)
	}
	c.log.Info("cases exported", "account", a.ID, "rows", n, "filter", r.URL.RawQuery, "limit", strconv.Itoa(MaxExport))
}
