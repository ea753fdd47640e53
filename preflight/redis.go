package preflight

import (
	"errors"
	"fmt"

	"github.com/qrphgate/qrphgate/store"
)

// PersistenceVerdict judges what a Redis server says of its persistence.
// A spool on it holds acknowledged webhooks that exist nowhere else, so
// it needs appendonly yes (else a restart loses them) and appendfsync
// always (else a crash loses the last second); a server holding only the
// rate budget and the idempotency cache loses nothing that matters. err
// is Persistence's error: a refusal (managed services) is a warning that
// says so.
func PersistenceVerdict(p store.RedisPersistence, err error, spool bool) Verdict {
	const fix = "run Redis with appendonly yes and appendfsync always (managed services: enable AOF persistence with fsync always)"
	switch {
	case errors.Is(err, store.ErrConfigRefused):
		if !spool {
			return Pass("the server does not tell its persistence settings (" + err.Error() + "); nothing here needs them")
		}
		return Warning("the server does not tell its persistence settings ("+err.Error()+"), so preflight cannot check that the spool survives a restart",
			"check in your Redis service's settings that AOF persistence is on with fsync always")
	case err != nil:
		return Failure("reading the persistence settings: "+err.Error(), "check that the server is reachable")
	}
	settings := fmt.Sprintf("appendonly %s, appendfsync %s, save %q", p.AppendOnly, p.AppendFsync, p.Save)
	switch {
	case !spool:
		return Pass(settings + " (the server holds no spool)")
	case p.AppendOnly != "yes":
		return Warning(settings+": a Redis restart loses every webhook waiting in the spool", fix)
	case p.AppendFsync != "always":
		return Warning(settings+": a Redis crash loses the webhooks of the last second, already acknowledged to the provider", fix)
	}
	return Pass(settings + ": the spool survives a restart and a crash")
}
