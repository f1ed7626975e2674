package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/config"
)

// DialOptions say how a process reaches Redis (redis.* of the configuration):
// at Addr, or, when SentinelMaster is set, at whichever server the Sentinels at
// SentinelAddrs name as the master of SentinelMaster.
type DialOptions struct {
	Addr     string // redis.addr; not used through Sentinel
	Password string // redis.password, of the Redis servers
	DB       int    // redis.db

	SentinelMaster   string   // redis.sentinel.master; empty: no Sentinel
	SentinelAddrs    []string // redis.sentinel.addrs
	SentinelPassword string   // redis.sentinel.password, of the Sentinels themselves

	DialTimeout time.Duration // 0: go-redis's default (5 s)
	ReadTimeout time.Duration // 0: go-redis's default (3 s)

	// Context deadlines bound every call (a hung Redis must not hang a task);
	// go-redis adds a blocking command's own block to the read timeout.
	ContextTimeout bool

	// Set by BlockOnDial: a pool of one connection, whose every connect calls
	// onConnect.
	single    bool
	onConnect func(context.Context, *redis.Conn) error
}

// DialConfig returns the DialOptions of redis.* (the worker's and workerctl's,
// which set the timeouts of their own). Context deadlines bound every call: a
// hung Redis must not hang a task.
func DialConfig(r config.Redis) DialOptions {
	return DialOptions{
		Addr:             r.Addr,
		Password:         r.Password,
		DB:               r.DB,
		SentinelMaster:   r.Sentinel.Master,
		SentinelAddrs:    r.Sentinel.Addrs,
		SentinelPassword: r.Sentinel.Password,
		ContextTimeout:   true,
	}
}

// Sentinel reports whether o finds Redis through Sentinel.
func (o DialOptions) Sentinel() bool { return o.SentinelMaster != "" }

// Where names the server, or the Sentinel master, for messages.
func (o DialOptions) Where() string {
	if o.Sentinel() {
		return "sentinel master " + o.SentinelMaster
	}
	return o.Addr
}

// Dial returns a client on Redis: a plain one on Addr, or go-redis's failover
// client when SentinelMaster is set. Through Sentinel, every new connection
// asks the Sentinels for the master, and go-redis drops a connection that
// answers READONLY (a master demoted to replica) and tries the command again
// on a new one: after a failover, commands reach the new master. Close the
// client when done.
func Dial(o DialOptions) redis.UniversalClient {
	uo := &redis.UniversalOptions{
		Addrs:                 []string{o.Addr},
		Password:              o.Password,
		DB:                    o.DB,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		ContextTimeoutEnabled: o.ContextTimeout,
		OnConnect:             o.onConnect,
	}
	if o.Sentinel() {
		// With a master name, go-redis makes a failover client of the Sentinels.
		uo.Addrs, uo.MasterName, uo.SentinelPassword = o.SentinelAddrs, o.SentinelMaster, o.SentinelPassword
	}
	if o.single {
		uo.PoolSize, uo.MinIdleConns, uo.MaxIdleConns = 1, 0, 1
	}
	return redis.NewUniversalClient(uo)
}
