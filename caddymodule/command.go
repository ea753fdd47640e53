package caddymodule

import (
	"fmt"
	"io"
	"net/http"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "modulus",
		Usage: "<command> [flags]",
		Short: "qrphgate's own commands for operators",
		Long: `
The modulus command groups qrphgate's operator commands. Those that read a
running qrphgate (through its admin API) take --address, or --config (and
--adapter) to find the admin address the way "caddy reload" does.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Args = cobra.NoArgs
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			for _, sub := range modulusCommands {
				cmd.AddCommand(sub())
			}
		},
	})
}

// modulusCommands build the subcommands of `qrphgate modulus`; each file
// that adds one registers it from its init.
var modulusCommands []func() *cobra.Command

// registerModulusCommand adds a subcommand to `qrphgate modulus`.
func registerModulusCommand(build func() *cobra.Command) {
	modulusCommands = append(modulusCommands, build)
}

// adminFlags adds the flags a command needs to find the admin API:
// --address, or --config and --adapter as `caddy reload` reads them.
func adminFlags(cmd *cobra.Command) {
	cmd.Flags().String("address", "", "the admin API address (default: from --config, else localhost:2019)")
	cmd.Flags().StringP("config", "c", "", "the config file, to read the admin address from")
	cmd.Flags().StringP("adapter", "a", "", "the config adapter")
}

// adminRequest makes a request to the running qrphgate's admin API (see
// adminFlags) and returns the answer's body; an answer of 400 or more is an
// error carrying its text.
func adminRequest(cmd *cobra.Command, method, uri string, body io.Reader) ([]byte, error) {
	address, _ := cmd.Flags().GetString("address")
	config, _ := cmd.Flags().GetString("config")
	adapter, _ := cmd.Flags().GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin API: %w", err)
	}
	var h http.Header
	if body != nil {
		h = http.Header{"Accept": {"application/json"}}
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, h, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
