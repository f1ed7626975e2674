package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// The pages and the static files are in the binary: no build step, nothing to
// install beside it.
//
//go:embed templates/*.html static/*
var files embed.FS

// pages holds each page's template: the layout with the page's "content".
type pages struct {
	t map[string]*template.Template
}

func loadPages() (*pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		p.t[strings.TrimSuffix(base, ".html")] = t
	}
	return p, nil
}

// view is what the layout shows around a page's own data.
type view struct {
	Title    string
	Nav      string // the menu item of the page
	User     string // "" when not logged in
	Role     string
	CanAct   bool // show the forms that change things
	ReadOnly bool
	CSRF     string
	Flash    string
	Refresh  int // without JavaScript, reload the page after this many seconds (0: never)
	Data     any
}

// newView fills the layout's part of a page for the person p.
func (c *Console) newView(p who, title, nav string, data any) *view {
	v := &view{Title: title, Nav: nav, ReadOnly: p.readOnly, CanAct: p.canAct(), Data: data}
	if p.sess != nil {
		v.User, v.Role, v.CSRF = p.sess.user, p.sess.role, p.sess.csrf
		v.Flash = c.sessions.takeFlash(p.sess)
	}
	return v
}

// render writes page name with v. For a visitor who is not logged in, every
// e-mail address in the page is masked.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t := c.pages.t[name]
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.p.Log.Error("console page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be made; see the console's log", http.StatusInternalServerError)
		return
	}
	out := b.Bytes()
	if v.User == "" {
		out = maskEmails(out)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out) // the client may have gone
}

// fail shows an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, p who, status int, msg string) {
	c.render(w, r, status, "error", c.newView(p, http.StatusText(status), "", msg))
}

// emailPattern finds e-mail addresses in text and in the HTML html/template
// writes, where a '+' is "&#43;", an apostrophe "&#39;", an ampersand "&amp;",
// and an '@' in a URL "%40".
var emailPattern = regexp.MustCompile(`(?:[A-Za-z0-9._%\-]|&#43;|&#39;|&amp;)+(?:@|%40|&#64;)([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)`)

// maskEmails replaces the part before the '@' of every e-mail address with
// "***": "***@example.com".
func maskEmails(b []byte) []byte {
	return emailPattern.ReplaceAll(b, []byte("***@$1"))
}

// funcs are the helpers the templates call.
var funcs = template.FuncMap{
	"ago":      ago,
	"clip":     clip,
	"stamp":    stamp,
	"percent":  percent,
	"maxBytes": func() int { return maxShown },
	"taskURL":  searchLink,
	"pctValue": func(p *float64) string { return fmt.Sprintf("%.1f", min(max(*p, 0), 100)) },
	"deref":    func(s *string) string { return derefOr(s, "-") },
}

func derefOr(s *string, none string) string {
	if s == nil || *s == "" {
		return none
	}
	return *s
}

// maxShown is how much of a payload or a webhook body a list shows.
const maxShown = 2000

// clip cuts s to n bytes (on a character boundary) and says how much was cut.
func clip(n int, s string) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:cut], len(s)-cut)
}

// ago renders a duration for people: "42s", "3m05s", "2h04m", "3d04h".
func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// stamp renders a time in UTC, to the second; "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// percent renders a progress percentage; "" when unknown.
func percent(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%.1f%%", *p)
}
