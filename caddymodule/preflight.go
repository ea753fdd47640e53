package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/qrphgate/qrphgate/preflight"
)

func init() {
	registerModulusCommand(preflightCommand)
}

// errPreflightFailed makes the command exit with status 1 once the report
// is printed.
var errPreflightFailed = errors.New("preflight: a check failed")

// preflightCommand is `qrphgate modulus preflight`: the go-live checklist.
func preflightCommand() *cobra.Command {
	var o preflightOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "preflight --config FILE [--adapter caddyfile] [--live] [--test-payment AMOUNT] [--json]",
		Short: "Checks that a config is ready for production, line by line",
		Long: `
Preflight loads the config as "qrphgate run" would (adapt and provision,
without starting it: no port is bound, nothing is delivered or sent) and
prints a checklist, one line per check: ok, warn or fail (or skip: not
made, and why), the reason and the fix. The exit status is 0 when nothing fails, 1 otherwise.

Offline checks: the config adapts and provisions; each modulus_api's key
matches its environment, its keys decode to 32 bytes, no host of the other
environment, https upstreams; each modulus_webhook's allow_ips, decryption
keys, sign_secret, TLS, trusted proxies and spool (writable, fsync timed);
Redis answers and persists; the admin API stays off public interfaces;
metrics and health handlers; the clock is synchronised.

--live adds: GET /ping on both provider APIs, the credentials (one GET
/v1/webhooks, never retried), the webhooks registered and ENABLED for the
public URL of each modulus_webhook, and that site's certificate.
--test-payment 1.00 then creates one QR of that amount (at most 10.00 in
production) and prints the command to watch its status.

--json prints the report as JSON (schema qrphgate.preflight/v1, described
in docs/to-production.md) for CI pipelines. Run preflight from the
directory qrphgate runs in, with its environment: relative paths and
{env.*}/{file.*} placeholders resolve as they will there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Config == "" {
				return errors.New("--config is required")
			}
			if o.TestPayment != "" {
				if _, err := preflight.CheckTestAmount(o.TestPayment, false); err != nil {
					return err
				}
			}
			if o.WebhookURL != "" {
				if u, err := url.Parse(o.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return errors.New("--webhook-url must be an absolute URL such as https://pay.example.com/webhooks/modulus")
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			r := runPreflight(ctx, o)
			var err error
			if asJSON {
				err = r.WriteJSON(cmd.OutOrStdout())
			} else {
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
			if !r.Passed {
				cmd.SilenceErrors, cmd.SilenceUsage = true, true
				return errPreflightFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Config, "config", "c", "", "the config file, as `qrphgate run` takes it")
	f.StringVarP(&o.Adapter, "adapter", "a", "", "the config adapter (default: caddyfile for a file named Caddyfile*, else JSON)")
	f.BoolVar(&o.Live, "live", false, "also run the online checks (provider, credentials, webhook registrations, certificate)")
	f.StringVar(&o.TestPayment, "test-payment", "", "create one QR of this amount, such as 1.00, through the gateway (implies --live)")
	f.StringVar(&o.WebhookURL, "webhook-url", "", "the public URL the provider posts webhooks to, when the config cannot tell it")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
