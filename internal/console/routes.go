package console

import (
	"io/fs"
	"net/http"

	"github.com/coursedl/worker/internal/config"
)

// routes maps every path of the console. Pages and event streams are GET;
// every change is a POST (act), so a link, an image or a prefetch can change
// nothing.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(files, "static") // the directory is embedded: Sub cannot fail
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) { files.ServeHTTP(w, r) })

	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.act(config.RoleViewer, c.logout))

	mux.HandleFunc("GET /{$}", c.look(c.overview))
	mux.HandleFunc("GET /running", c.look(c.running))
	mux.HandleFunc("GET /search", c.look(c.search))
	mux.HandleFunc("GET /dead", c.look(c.deadPage))
	mux.HandleFunc("GET /delayed", c.look(c.delayedPage))
	mux.HandleFunc("GET /webhooks", c.look(c.webhooksPage))
	mux.HandleFunc("GET /workers", c.look(c.workersPage))

	mux.HandleFunc("GET /events/progress", c.look(c.progressEvents))
	mux.HandleFunc("GET /events/task/{id}", c.look(c.taskEvents))

	mux.HandleFunc("POST /dead/requeue", c.act(config.RoleOperator, c.deadRequeue))
	mux.HandleFunc("POST /dead/purge", c.act(config.RoleOperator, c.deadPurge))
	mux.HandleFunc("POST /delayed/run", c.act(config.RoleOperator, c.delayedRun))
	mux.HandleFunc("POST /webhooks/redeliver", c.act(config.RoleOperator, c.webhooksRedeliver))
	mux.HandleFunc("POST /intake/pause", c.act(config.RoleOperator, c.pause))
	mux.HandleFunc("POST /intake/resume", c.act(config.RoleOperator, c.resume))
	return secure(mux)
}
