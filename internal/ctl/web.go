package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/coursedl/worker/internal/store"
)

// WebParams is what `workerctl web` hands to the console.
type WebParams struct {
	Tool   *Tool
	Store  *store.Store // nil without mysql.dsn
	Listen string       // console.listen
	Users  []string     // console.users, validated
	Stderr io.Writer    // the console's log
}

// WebFunc serves the console until ctx ends: package console's Serve.
// workerctl's main passes it in Env, so that this package need not import the
// console (which reads and acts through a Tool).
type WebFunc func(ctx context.Context, p WebParams) error

// hashCost is the bcrypt cost of the hashes `web hash-password` makes: about a
// quarter of a second on a current server, per login.
const hashCost = 12

// minPassword is the shortest password `web hash-password` hashes.
const minPassword = 10

func (m *cli) webCmd() *cobra.Command {
	web := &cobra.Command{
		Use:   "web",
		Short: "Serve the operator's web console on console.listen until interrupted",
		Long: `Serve the operator's web console on console.listen (for example 127.0.0.1:9109)
until SIGINT or SIGTERM. It reads Redis, MySQL and logs.dir as the other commands do.
Users are console.users, role:name:bcrypt-hash each (viewer looks, operator acts);
'workerctl web hash-password' makes a hash. With no users the console is read-only,
hides e-mail addresses and serves only on a loopback address.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m.ran = true
			if m.env.Web == nil {
				return errors.New("this workerctl was built without the console")
			}
			t, closeTool, err := m.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer closeTool()
			s, _ := t.Rows.(*store.Store) // nil without mysql.dsn
			return m.env.Web(c.Context(), WebParams{Tool: t, Store: s, Listen: m.cfg.Console.Listen,
				Users: m.cfg.Console.Users, Stderr: m.env.Stderr})
		},
	}
	web.AddCommand(&cobra.Command{
		Use:   "hash-password",
		Short: "Read a password on stdin and print its bcrypt hash, for console.users",
		Long: `Read a password from the first line of stdin and print its bcrypt hash (cost 12),
to be written into console.users as role:name:HASH. The password is not echoed
by this command; type it and press Enter, or pipe it in.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			m.ran = true
			return hashPassword(m.env.Stdin, m.env.Stdout)
		},
	})
	return web
}

// hashPassword reads a password from the first line of in and writes its
// bcrypt hash to out.
func hashPassword(in io.Reader, out io.Writer) error {
	if in == nil {
		return errors.New("no stdin to read the password from")
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	switch {
	case len(pw) < minPassword:
		return fmt.Errorf("the password is shorter than %d characters", minPassword)
	case len(pw) > 72:
		return errors.New("the password is longer than 72 bytes, which bcrypt cannot take")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), hashCost)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", hash)
	return err
}
