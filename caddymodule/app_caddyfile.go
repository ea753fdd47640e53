package caddymodule

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("modulus", parseModulusGlobal)
}

// appRules are the modulus app's option rules (see rules.go): the
// Caddyfile applies an option's rule as it reads it, Provision applies them
// all.
var appRules = []optionRule[*App]{
	{"ledger", func(a *App) error { return checkLedgerSpec(a.Ledger) }},
	{"ledger_retention", func(a *App) error {
		if a.LedgerRetention != 0 && a.LedgerRetention < caddy.Duration(minLedgerRetention) {
			return errors.New("ledger_retention must be a duration of at least 1h, such as 90d")
		}
		return nil
	}},
	{"expiry_grace", func(a *App) error { return checkNonNegativeDuration("expiry_grace", a.ExpiryGrace) }},
	{"expiry_events", func(a *App) error { return checkOneOf("expiry_events", a.ExpiryEvents, "on", "off") }},
	{"at_rest_key", func(a *App) error {
		for i, k := range a.AtRestKeys {
			if err := checkSecretForm(listName("at_rest_key", i), k, false); err != nil {
				return err
			}
			if k == "" {
				return errors.New(listName("at_rest_key", i) + " is empty")
			}
		}
		return nil
	}},
	{"at_rest_key_encoding", func(a *App) error { return checkKeyEncoding("at_rest_key_encoding", a.AtRestKeyEncoding) }},
	{"audit_log", func(a *App) error {
		if a.AuditLog != "" && !strings.HasPrefix(a.AuditLog, "/") && !strings.HasPrefix(a.AuditLog, "{") {
			return errors.New("audit_log must be an absolute file path, such as /var/log/qrphgate/audit.log")
		}
		return nil
	}},
}

// minLedgerRetention keeps the retention from purging QRs still pending.
const minLedgerRetention = time.Hour

const ledgerSyntax = "ledger must be memory, file:///absolute/path, redis://host:port/db, " +
	"redis-cluster://host:port,host:port,... or redis-sentinel://host:port,host:port/MASTERNAME[/db] " +
	"(rediss://, rediss-cluster://, rediss-sentinel:// for TLS)"

// checkLedgerSpec is the ledger option's rule: the forms modulus_api's
// store takes, and a Redis password only as a placeholder.
func checkLedgerSpec(spec string) error {
	switch {
	case spec == "" || spec == "memory":
		return nil
	case strings.HasPrefix(spec, "file://"):
		if checkStoreSpec(spec) != nil {
			return errors.New("ledger: file:// takes an absolute file path, such as file:///var/lib/qrphgate/ledger.db")
		}
		return nil
	}
	return checkRedisOption("ledger", spec, ledgerSyntax)
}

// parseModulusGlobal reads the global `modulus` options block into the
// modulus app's JSON. Syntax:
//
//	{
//		modulus {
//			ledger           memory|file:///absolute/path|<redis-url>   # a <redis-url> as modulus_api's store takes
//			ledger_retention <duration>
//			expiry_grace     <duration>
//			expiry_events    on|off
//			at_rest_key      <{env.NAME}|{file.PATH}>   # repeatable: the first encrypts, all decrypt
//			at_rest_key_encoding utf8|base64|base64url|hex
//			audit_log        /absolute/path
//		}
//	}
//
// Every option may be left out. Unknown and repeated options (but
// at_rest_key) are errors.
func parseModulusGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("modulus: the global modulus block is given twice")
	}
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "modulus", Value: raw}, nil
}

// UnmarshalCaddyfile sets up the app from the global options block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return eachOption(d, "modulus", []string{"at_rest_key"}, func(opt string) error {
		line, err := readOption(d, "modulus")
		if err != nil {
			return err
		}
		switch opt {
		case "ledger":
			a.Ledger, err = line.one()
		case "ledger_retention":
			a.LedgerRetention, err = line.duration()
		case "expiry_grace":
			var dur caddy.Duration
			if dur, err = line.durationOrZero(); err == nil {
				a.ExpiryGrace = &dur
			}
		case "expiry_events":
			a.ExpiryEvents, err = line.one()
		case "at_rest_key":
			var k string
			if k, err = line.one(); err == nil {
				a.AtRestKeys = append(a.AtRestKeys, k)
			}
		case "at_rest_key_encoding":
			a.AtRestKeyEncoding, err = line.one()
		case "audit_log":
			a.AuditLog, err = line.one()
		default:
			return unknownOption(d, "modulus", opt)
		}
		if err != nil {
			return err
		}
		return line.fail(checkRule(appRules, a, opt))
	})
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*App)(nil)
