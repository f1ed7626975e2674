package rdb

import (
	"errors"
	"io"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// failoverReplies are the prefixes of Redis's replies while a master fails
// over: a write refused by a master demoted to replica, a blocked command
// unblocked (the server changed role, or CLIENT UNBLOCK ... ERROR), no master
// known yet, a server still loading its data.
var failoverReplies = []string{"READONLY", "UNBLOCKED", "MASTERDOWN", "LOADING"}

// failoverMessages are how a connection to a master that died, or to an
// address nobody serves yet, ends.
var failoverMessages = []string{"connection reset by peer", "broken pipe", "connection refused"}

// IsFailover reports whether err is one a Redis failover brings (through
// Sentinel, or a restart): a reply in failoverReplies, or a connection
// reset, closed by the server or refused. Such an error is worth trying
// again soon on a new connection, and never says anything about the task
// under way: it must not count as a failure of one.
func IsFailover(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range failoverReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := err.Error()
	for _, m := range failoverMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
