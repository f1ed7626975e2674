// Command fakeapp stands in for the outside parts of the web app in the demo: it
// serves course videos for the downloader to fetch and receives the worker's
// webhooks, checking their Standard Webhooks signature as the web app would.
//
//	GET|HEAD /courses/<name>/lesson-<n>.mp4  a video/mp4 body of -video-bytes fixed
//	                                         pseudo-random bytes, paced to last ~1.5 s
//	POST     /webhook                        204 when the signature verifies, else 401;
//	                                         each one is appended to -out as a JSON line
//	GET      /healthz                        200
//
// It is a demo tool, not a model of the web app: it keeps nothing but the -out file,
// and it runs no other program.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coursedl/worker/internal/notify"
)

const (
	chunkSize    = 64 << 10                // bytes written between pauses
	videoPacing  = 1500 * time.Millisecond // about how long one video takes to send
	maxBodyBytes = 1 << 20                 // largest webhook body read
)

func main() { os.Exit(run()) }

func run() int {
	listen := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	secret := flag.String("secret", os.Getenv("FAKEAPP_SECRET"), "webhook secret, whsec_<base64> (default $FAKEAPP_SECRET)")
	out := flag.String("out", "", "append one JSON line per webhook received to this file")
	videoBytes := flag.Int("video-bytes", 3<<20, "size of every served video in bytes")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("fakeapp: ")

	signer, err := notify.NewSigner(*secret)
	if err != nil {
		log.Printf("-secret: %v", err)
		return 2
	}
	if *videoBytes < 1 {
		log.Printf("-video-bytes must be positive, got %d", *videoBytes)
		return 2
	}
	a := &app{signer: signer, video: fixedBytes(*videoBytes)}
	if *out != "" {
		// G302: the demo's record of the webhooks received, for the person
		// running it to read; it holds no secret.
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // see above
		if err != nil {
			log.Printf("-out: %v", err)
			return 2
		}
		defer func() {
			if err := f.Close(); err != nil {
				log.Printf("-out: %v", err)
			}
		}()
		a.out = f
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /courses/{course}/{file}", a.serveVideo) // GET also matches HEAD
	mux.HandleFunc("POST /webhook", a.receiveWebhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on http://%s (videos of %d bytes)", *listen, *videoBytes)
	select {
	case err := <-errc:
		log.Printf("listen: %v", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("shutdown: %v", err)
		return 1
	}
	log.Printf("stopped")
	return 0
}

// app holds the handlers' shared state.
type app struct {
	signer *notify.Signer
	video  []byte

	mu  sync.Mutex // serialises writes to out
	out *os.File   // nil when -out is not given
}

var lessonFile = regexp.MustCompile(`^lesson-[0-9]+\.mp4$`)

// serveVideo writes the fixed video in chunks with a pause between them, so the
// downloader prints a few progress lines. It ignores Range: a fresh download never
// sends one.
func (a *app) serveVideo(w http.ResponseWriter, r *http.Request) {
	if !lessonFile.MatchString(r.PathValue("file")) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Length", strconv.Itoa(len(a.video)))
	h.Set("Last-Modified", "Sat, 28 Nov 2026 20:00:00 GMT")
	if r.Method == http.MethodHead {
		return
	}
	start, sent := time.Now(), 0
	defer func() {
		// yt-dlp first probes the URL and closes the connection early.
		//nolint:gosec // G706: the demo's stand-in logs to the demo's screen what the worker under test asked for
		log.Printf("%s %s: sent %d of %d bytes in %s", r.Method, r.URL.Path, sent, len(a.video),
			time.Since(start).Round(time.Millisecond))
	}()
	chunks := (len(a.video) + chunkSize - 1) / chunkSize
	pause := videoPacing / time.Duration(chunks)
	rc := http.NewResponseController(w)
	for sent < len(a.video) {
		if sent > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(pause):
			}
		}
		n, err := w.Write(a.video[sent:min(sent+chunkSize, len(a.video))])
		sent += n
		if err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// record is one line of the -out file.
type record struct {
	WebhookID string          `json:"webhookId"`
	Verified  bool            `json:"verified"`
	Error     string          `json:"error,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// receiveWebhook verifies a webhook's signature, records it and answers 204 or 401.
func (a *app) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	err = a.signer.Verify(id, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"), time.Now(), 0)
	if id == "" && err == nil {
		err = errors.New("no webhook-id header")
	}
	rec := record{WebhookID: id, Verified: err == nil, Body: body}
	if err != nil {
		rec.Error = err.Error()
	}
	if !json.Valid(body) {
		rec.Body, _ = json.Marshal(string(body)) // keep the line valid JSON
	}
	if werr := a.record(rec); werr != nil {
		log.Printf("-out: %v", werr)
	}
	if err != nil {
		log.Printf("webhook %s REJECTED: %v: %s", id, err, body) //nolint:gosec // G706: as in serveVideo
		http.Error(w, "signature not verified", http.StatusUnauthorized)
		return
	}
	log.Printf("webhook %s verified: %s", id, body) //nolint:gosec // G706: as in serveVideo
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) record(rec record) error {
	if a.out == nil {
		return nil
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line) // one compact line, '\n' included
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.out.Write(line.Bytes())
	return err
}

// fixedBytes returns n pseudo-random bytes, the same on every run.
func fixedBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(2026, 11)) //nolint:gosec // G404: a fixed seed on purpose; the bytes stand in for a video
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32()) //nolint:gosec // G115: the low byte is the point
	}
	return b
}
