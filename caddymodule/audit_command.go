package caddymodule

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qrphgate/qrphgate/audit"
)

func init() {
	registerModulusCommand(auditCommand)
}

// auditCommand is `qrphgate modulus audit verify FILE...`: it checks an
// audit trail's hash chain on disk (no running qrphgate needed).
func auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit trail",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE...",
		Short: "Check an audit trail's hash chain and name the first broken line",
		Long: `
Checks that every line of the audit trail (audit_log) follows the one before
it: its seq is the next and its prev is that line's SHA-256. Give the current
file and the rotated ones (audit.log.*) in any order: they are checked as one
chain, ordered by their first line. It names the first line where the chain
breaks (a line changed, removed or inserted) and exits with status 1; else it
prints the last line's seq and hash, to compare with the head recorded
elsewhere (GET /modulus/status, "audit"): the chain alone cannot show lines
cut off the end.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			rep, err := audit.Verify(files...)
			var broken *audit.BrokenError
			if errors.As(err, &broken) {
				return fmt.Errorf("audit trail broken at %s:%d (seq %d): %s", broken.File, broken.Line, broken.Seq, broken.Reason)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ok: %d lines in %d files, seq %d to %d\nhead: seq %d sha256 %s\n", rep.Lines, len(rep.Files), rep.First, rep.Last, rep.Last, rep.Head)
			if !rep.Anchored && rep.Lines > 0 {
				fmt.Fprintf(out, "the first line (seq %d) is not the trail's first: give the files before it to check its link too\n", rep.First)
			}
			return nil
		},
	})
	return cmd
}
