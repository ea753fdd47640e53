package caddymodule

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
)

// The files qrphgate keeps, each held by a pool across reloads: a
// modulus_webhook's spool, modulus_api's store, the payments ledger and the
// audit trail. One rule for all of them: a file is one thing's. Two of
// them on one path would corrupt each other (different formats in one
// bbolt file) or, for the bbolt ones, wait on each other's lock and fail
// after seconds with a lock timeout; this says what is wrong at once.

// File roles, as the errors name them.
const (
	fileRoleSpool  = "a modulus_webhook spool"
	fileRoleStore  = "modulus_api's store"
	fileRoleLedger = "the payments ledger"
	fileRoleAudit  = "the audit log"
)

// fileHolders are the pools that hold files, with the key each gives a
// path.
var fileHolders = []struct {
	role string
	pool *caddy.UsagePool
	key  func(path string) string
}{
	{fileRoleSpool, webhookWorkers, func(p string) string { return "spool:" + p }},
	{fileRoleStore, storePool, func(p string) string { return "file|" + p }},
	{fileRoleLedger, ledgers, func(p string) string { return "ledger|file|" + p }},
	{fileRoleAudit, auditTrails, func(p string) string { return p }},
}

// checkOwnFile is the rule: option (as an error names it) wants path (an
// absolute path) for role, which it may share only with the same role (a
// reload, two handlers on one spool). It refuses a path another role holds
// in this process.
func checkOwnFile(option, role, path string) error {
	path = filepath.Clean(path)
	for _, h := range fileHolders {
		if h.role == role {
			continue
		}
		if _, held := h.pool.References(h.key(path)); held {
			return fmt.Errorf("%s: %s is %s's file; a spool, modulus_api's store, the payments ledger and the audit log each need a file of their own",
				option, path, h.role)
		}
	}
	return nil
}
