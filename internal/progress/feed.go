package progress

import (
	"bytes"
	"encoding/binary"
	"sync"
	"time"
)

// Feed parses a downloader's output for a TaskPublisher at the publisher's pace.
//
// The publisher sends at most one update per MinInterval, so of a flood of
// progress lines only the latest of each interval counts. Feed parses the first
// progress line at once and then holds the later ones unparsed (a copy, not a
// parse) until the interval is over, when it parses the latest and hands it on:
// a downloader printing thousands of lines a second costs a copy a line, and the
// newest update is still always sent. Progress lines change no state of the
// parser; every other line (a new file, a playlist position, a file already
// there) is parsed at once, in order, after the progress line held before it.
//
// Line is called from the process's output goroutine, the interval's end from a
// timer; Feed is safe for that. Close must be called when the output has ended.
type Feed struct {
	sink  Updater // the TaskPublisher
	stage string
	every time.Duration

	mu      sync.Mutex
	parser  Downloader
	held    []byte // the latest progress line not parsed yet, when hasHeld
	hasHeld bool
	timer   *time.Timer
	armed   bool // the interval runs: progress lines are held
	closed  bool
}

// Updater takes the updates of a Feed; *TaskPublisher is one.
type Updater interface {
	Update(stage string, u Update)
}

// NewFeed returns a Feed of downloader output for sink, whose updates are for
// stage (StageDownloading). every is the least time between two of sink's
// events: a TaskPublisher's MinInterval (DefaultMinInterval unless set).
func NewFeed(sink Updater, stage string, every time.Duration) *Feed {
	return &Feed{sink: sink, stage: stage, every: every}
}

// Lines takes lines of the downloader's output in order, under one lock; only the progress line still held at the end is copied. It
// does not keep lines.
func (f *Feed) Lines(lines [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	var last []byte // the progress line held, when it is one of lines; nil when not
	for _, line := range lines {
		switch {
		case !isProgressLine(line):
			if last != nil {
				f.parseLocked(last)
				last = nil
			} else {
				f.parseHeldLocked()
			}
			f.parseLocked(line)
		case f.armed:
			last, f.hasHeld = line, false // newer than any line held before
		default:
			f.parseLocked(line)
			f.armLocked()
		}
	}
	if last != nil {
		f.held = append(f.held[:0], last...)
		f.hasHeld = true
	}
}

// Close parses the line held, if any, and stops the timer; later lines are
// ignored.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	f.parseHeldLocked()
}

// tick ends an interval: the line held, if any, is parsed and a new interval
// begins; else progress lines are parsed at once again.
func (f *Feed) tick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	if f.closed || !f.hasHeld {
		return
	}
	f.parseHeldLocked()
	f.armLocked()
}

func (f *Feed) armLocked() {
	f.armed = true
	if f.timer == nil {
		f.timer = time.AfterFunc(f.every, f.tick)
		return
	}
	f.timer.Reset(f.every)
}

func (f *Feed) parseHeldLocked() {
	if f.hasHeld {
		f.hasHeld = false
		f.parseLocked(f.held)
	}
}

func (f *Feed) parseLocked(line []byte) {
	if u, ok := f.parser.Parse(line); ok {
		f.sink.Update(f.stage, u)
	}
}

// downloa is the first eight bytes of "[download]" as a little-endian word.
var downloa = binary.LittleEndian.Uint64(tokDownload)

// isProgressLine reports whether line is one of yt-dlp's progress lines, whose
// parse depends on nothing after it and changes no state of the Downloader:
// "[download]  42.3% of ...", "[download] N/A% of ...", "[download]   1.00KiB at
// ...", or a bare "57.5%" of another program.
func isProgressLine(line []byte) bool {
	// The common case first, without the tokenizer: "[download]" (compared as a
	// word and two bytes, inline: a flood of output asks this of every line) and
	// blanks, then digits and dots ending in '%' and a blank.
	if len(line) > len(tokDownload) && binary.LittleEndian.Uint64(line) == downloa && line[8] == 'd' && line[9] == ']' {
		rest := line[len(tokDownload):]
		i := 0
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		j := i
		for j < len(rest) && (isDigit(rest[j]) || rest[j] == '.') {
			j++
		}
		if i > 0 && j > i && j < len(rest) && rest[j] == '%' && (j+1 == len(rest) || rest[j+1] == ' ') {
			return true
		}
	}
	f := fields{b: line}
	tok := f.next()
	if len(tok) == 0 {
		return false
	}
	if !bytes.Equal(tok, tokDownload) {
		_, n := number(tok)
		return n > 0 && n < len(tok) && tok[n] == '%'
	}
	tok = f.next()
	if len(tok) == 0 {
		return false
	}
	if tok[len(tok)-1] == '%' {
		return true
	}
	_, ok := size(tok)
	return ok
}
