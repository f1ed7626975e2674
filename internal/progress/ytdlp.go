package progress

import (
	"bytes"
)

// Downloader parses the downloader's output one line at a time: yt-dlp's
// "[download]" lines (with or without colours, from --newline or from a redrawn
// line split at '\r') and bare "NN.N%" lines of other programs.
//
// It is stateful: "[download] Destination: ..." starts a new file (counted by Files;
// percents start again from 0), and "[download] Downloading item N of M" sets the
// playlist position reported with every later update. The zero value is ready to
// use. A Downloader is not safe for concurrent use: give it the lines of one process
// in order.
type Downloader struct {
	files       int // Destination lines seen
	item, items int // playlist position

	// the last speed and ETA strings, reused while yt-dlp prints the same text so
	// that a steady download does not allocate for them on every line
	speed, eta string
}

var (
	tokDownload    = []byte("[download]")
	tokDestination = []byte("Destination:")
	tokDownloading = []byte("Downloading")
	alreadyDone    = []byte("has already been downloaded")
)

// Parse reads one output line and reports what it says about progress; ok is false
// when it says nothing (an "[info]" or "ERROR:" line, a Destination line, a progress
// line whose every field is unknown). Percent is clamped to 0..100; a speed or ETA
// printed as "Unknown" or "N/A" is left empty. Parse does not keep line, and it
// does not allocate for a line that is not a progress line.
func (d *Downloader) Parse(line []byte) (u Update, ok bool) {
	f := fields{b: line}
	tok := f.next()
	switch {
	case len(tok) == 0:
		return Update{}, false
	case bytes.Equal(tok, tokDownload):
		return d.parseDownload(&f)
	case isDigit(tok[0]):
		// a bare "57.5%" at the start of the line, whatever follows it
		v, n := number(tok)
		if n < len(tok) && tok[n] == '%' {
			return d.with(Update{Percent: clampPercent(v), HasPercent: true}), true
		}
	}
	return Update{}, false
}

// Files returns how many files the downloader has started ("Destination:" lines).
func (d *Downloader) Files() int { return d.files }

// parseDownload reads what follows "[download]".
func (d *Downloader) parseDownload(f *fields) (Update, bool) {
	rest := f.rest()
	tok := f.next()
	switch {
	case len(tok) == 0:
		return Update{}, false
	case bytes.Equal(tok, tokDestination):
		d.files++
		return Update{}, false
	case bytes.Equal(tok, tokDownloading):
		d.parseItem(f)
		return Update{}, false
	case bytes.Contains(rest, alreadyDone):
		// a file of an earlier run: done, though no Destination line announced it
		return d.with(Update{Percent: 100, HasPercent: true}), true
	}

	var u Update
	if tok[len(tok)-1] == '%' {
		// "42.3%", or "N/A%" when yt-dlp cannot tell
		u.Percent, u.HasPercent = percentToken(tok)
		if !u.HasPercent && !bytes.Equal(tok, []byte("N/A%")) {
			return Update{}, false
		}
	} else if b, ok := size(tok); ok {
		u.Bytes = b // "1.00KiB at 2.00MiB/s (00:00:01)": the size is not known
	} else {
		return Update{}, false
	}

	d.parseDetails(f, &u)

	if u.TotalBytes > 0 && u.HasPercent {
		u.Bytes = byteCount(float64(u.TotalBytes) * u.Percent / 100)
	}
	if !u.HasPercent && u.Speed == "" && u.ETA == "" && u.Bytes == 0 && u.TotalBytes == 0 {
		return Update{}, false
	}
	return d.with(u), true
}

// parseDetails reads what follows a progress line's first field into u: the
// total size ("of 10.00MiB", "of ~10.00MiB"), the speed ("at 2.00MiB/s") and the
// time left ("ETA 00:05").
func (d *Downloader) parseDetails(f *fields, u *Update) {
	for tok := f.next(); tok != nil; tok = f.next() {
		switch string(tok) {
		case "of":
			tok = f.next()
			if len(tok) == 1 && tok[0] == '~' {
				tok = f.next()
			} else if len(tok) > 1 && tok[0] == '~' {
				tok = tok[1:] // "of ~1023.00KiB": no blank once the size is 10 wide
			}
			if t, ok := size(tok); ok {
				u.TotalBytes = t
			}
		case "at":
			tok = f.next()
			if isSpeed(tok) {
				u.Speed = d.speedString(tok)
			}
		case "ETA":
			tok = f.next()
			if isDuration(tok) {
				u.ETA = d.etaString(tok)
			}
		}
	}
}

// parseItem reads "item 3 of 42" (or "video 3 of 42", as older versions print it).
func (d *Downloader) parseItem(f *fields) {
	if kind := f.next(); string(kind) != "item" && string(kind) != "video" {
		return
	}
	n, nl := number(f.next())
	if string(f.next()) != "of" {
		return
	}
	tok := f.next()
	m, ml := number(tok)
	if nl == 0 || ml == 0 || ml != len(tok) || n > m {
		return
	}
	d.item, d.items = int(n), int(m)
}

// with adds what the Downloader knows beyond the line.
func (d *Downloader) with(u Update) Update {
	u.Item, u.Items = d.item, d.items
	return u
}

func (d *Downloader) speedString(tok []byte) string {
	if string(tok) != d.speed {
		d.speed = string(tok)
	}
	return d.speed
}

func (d *Downloader) etaString(tok []byte) string {
	if string(tok) != d.eta {
		d.eta = string(tok)
	}
	return d.eta
}
