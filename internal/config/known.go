package config

import (
	"fmt"
	"sort"
	"strings"
)

// envPrefix starts every variable that overrides a key. A variable with this
// prefix that names no key is a typo, and an error; other variables are not ours.
const envPrefix = "WORKER_"

// typo is an unknown key in the file or the environment. key is the key it is
// judged by (the suggestion when there is one), for LoadForTool's filter;
// section is set when the file gave a value where a section's keys belong.
type typo struct {
	key     string
	err     error
	section bool
}

// sections lists every proper prefix of a key: download, redis, redis.sentinel.
func sections() map[string]bool {
	out := map[string]bool{}
	for k := range defaults {
		for i := range k {
			if k[i] == '.' {
				out[k[:i]] = true
			}
		}
	}
	return out
}

// fileTypos walks the file's tree of maps and reports every path that is not a
// key, sorted: each leaf under an unknown section is reported on its own
// (dowload.timeout: did you mean download.timeout?). A known section may be
// empty (every key under it commented out), but not a value.
func fileTypos(tree map[string]any) []typo {
	secs := sections()
	candidates := Keys()
	for s := range secs {
		candidates = append(candidates, s)
	}
	sort.Strings(candidates)
	var out []typo
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, val := range m {
			key := strings.ToLower(k)
			if prefix != "" {
				key = prefix + "." + key
			}
			if _, ok := defaults[key]; ok {
				continue // a key; its value's type is the reader's business
			}
			if sub, ok := asMap(val); ok && len(sub) > 0 {
				walk(key, sub)
				continue
			}
			if secs[key] {
				if _, ok := asMap(val); !ok && val != nil {
					out = append(out, typo{key, fmt.Errorf("%s: must hold keys (%s.…), not a value", key, key), true})
				}
				continue
			}
			if near, ok := nearest(key, candidates); ok {
				out = append(out, typo{key: near, err: fmt.Errorf("%s: did you mean %s?", key, near)})
			} else {
				out = append(out, typo{key: key, err: fmt.Errorf("%s: names no key", key)})
			}
		}
	}
	walk("", tree)
	sort.Slice(out, func(i, j int) bool { return out[i].err.Error() < out[j].err.Error() })
	return out
}

// asMap returns a YAML mapping as map[string]any.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[fmt.Sprint(k)] = x
		}
		return out, true
	}
	return nil, false
}

// envTypos reports, sorted, every variable of env that starts with WORKER_ and
// names no key.
func envTypos(env map[string]string) []typo {
	names := make(map[string]string, len(defaults)) // WORKER_DOWNLOAD_TIMEOUT -> download.timeout
	candidates := make([]string, 0, len(defaults))
	for _, k := range Keys() {
		names[envName(k)] = k
		candidates = append(candidates, envName(k))
	}
	var out []typo
	for name := range env {
		if !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if _, ok := names[name]; ok {
			continue
		}
		// Judged in upper case, so WORKER_download_timeout is pointed at its key.
		if near, ok := nearest(strings.ToUpper(name), candidates); ok {
			out = append(out, typo{key: names[near], err: fmt.Errorf("%s names no key: did you mean %s?", name, near)})
			continue
		}
		// The key it would be if its section has no '_': for LoadForTool's filter.
		guess := strings.Replace(strings.ToLower(strings.TrimPrefix(name, envPrefix)), "_", ".", 1)
		out = append(out, typo{key: guess, err: fmt.Errorf("%s names no key", name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].err.Error() < out[j].err.Error() })
	return out
}

// nearest returns the candidate closest to name by edit distance, the first in
// candidates' order among equals, when it is close enough to be a likely typo:
// at most max(2, len(name)/4) edits (a common prefix such as WORKER_ does not
// count towards the length).
func nearest(name string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := levenshtein(name, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	n := len(strings.TrimPrefix(name, envPrefix))
	if bestDist < 0 || bestDist > max(2, n/4) {
		return "", false
	}
	return best, true
}

// levenshtein returns the number of single-byte insertions, deletions and
// substitutions that turn a into b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
