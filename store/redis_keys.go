package store

import (
	"errors"
	"strings"
)

// redisKeys names every key qrphgate keeps in Redis. Each Lua script
// touches the keys of one slot, so that it runs on a Redis Cluster; the
// two layouts below differ only in the hash tags ({...}) that make it so.
//
// Single server and Sentinel (one primary holds every key) keep the layout
// of the releases before Cluster support, byte for byte, so that an
// upgrade (and a rolling upgrade, old and new replicas side by side) finds
// the pending webhooks, dead letters, de-duplication marks, idempotent
// answers and rate windows where the previous release left them:
//
//	<prefix>budget:<key>            an account's sliding window (sorted set)
//	<prefix>idem:<key>              an idempotency key (hash)
//	<prefix>dedupe:<key>            a de-duplication mark (string)
//	<prefix><spool>:due, :recv, :dead, :owners, :claims:<owner>, :ev:<id>
//	                                a spool (see RedisSpool); its marks are
//	                                the dedupe keys above
//
// Cluster carries a hash tag in every key. A key a script uses alone is
// tagged with its own name, so keys spread over the slots; a spool's keys
// all carry the spool's tag, and so do its de-duplication marks, since its
// Put writes the event and its mark in one script:
//
//	<prefix>budget:{<key>}
//	<prefix>idem:{<key>}
//	<prefix>idem:{<budget key>}:<key>  an idempotency key claimed with a
//	                                slot of that budget (BeginTake), in
//	                                the budget's slot
//	<prefix>dedupe:{<key>}          (de-duplication shared beside a file spool)
//	<prefix>{<spool>}:due, ..., :ev:<id>, :dedupe:<key>
//
// A Cluster needs no migration: no earlier release ran on one.
type redisKeys struct {
	prefix string
	tagged bool
}

func newRedisKeys(prefix string, mode RedisMode) (redisKeys, error) {
	if strings.ContainsAny(prefix, "{}") {
		return redisKeys{}, errors.New("store: the Redis key prefix must not contain { or } (hash tags are the store's)")
	}
	return redisKeys{prefix: prefix, tagged: mode == RedisCluster}, nil
}

// single names a key that a script uses alone.
func (k redisKeys) single(kind, key string) string {
	if k.tagged {
		return k.prefix + kind + ":{" + key + "}"
	}
	return k.prefix + kind + ":" + key
}

func (k redisKeys) budget(key string) string { return k.single("budget", key) }
func (k redisKeys) idem(key string) string   { return k.single("idem", key) }
func (k redisKeys) dedupe(key string) string { return k.single("dedupe", key) }

// idemIn names the idempotency record key among the records of scope: a
// rate budget's key, whose sliding window the create-QR script takes a slot
// of while it claims the record (BeginTake). On a Cluster the record then
// carries the budget's hash tag, so both keys of that script are in one
// slot; elsewhere, and without a scope, the name is idem's.
func (k redisKeys) idemIn(scope, key string) string {
	if k.tagged && scope != "" {
		return k.prefix + "idem:{" + scope + "}:" + key // budget's tag: {<scope>}
	}
	return k.idem(key)
}

// spool is the prefix of every key of the spool called name.
func (k redisKeys) spool(name string) string {
	if k.tagged {
		return k.prefix + "{" + name + "}:"
	}
	return k.prefix + name + ":"
}

// spoolDedupe names the de-duplication mark a spool's Put writes.
func (k redisKeys) spoolDedupe(name, key string) string {
	if k.tagged {
		return k.spool(name) + "dedupe:" + key
	}
	return k.dedupe(key)
}
