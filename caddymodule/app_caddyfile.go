package caddymodule

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("modulus", parseModulusGlobal)
}

// appRules are the modulus app's option rules (see rules.go): the
// Caddyfile applies an option's rule as it reads it, Provision applies them
// all.
var appRules = []optionRule[*App]{}

// parseModulusGlobal reads the global `modulus` options block into the
// modulus app's JSON. Syntax:
//
//	{
//		modulus {
//		}
//	}
//
// Every option may be left out. Unknown and repeated options are errors.
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
	return eachOption(d, "modulus", nil, func(opt string) error {
		return unknownOption(d, "modulus", opt)
	})
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*App)(nil)
