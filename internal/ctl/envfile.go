package ctl

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// readEnvFile reads a systemd EnvironmentFile (or docker env file): NAME=value
// lines; blank lines and lines starting with # or ; are skipped, an "export "
// prefix is allowed, and a value in matching single or double quotes loses them.
// Values are never printed: the file holds secrets.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: path is the operator's own --env-file flag
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer func() { _ = f.Close() }() // only read from
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--env-file %s: line %d is not NAME=value", path, n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out = append(out, name+"="+value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return out, nil
}
