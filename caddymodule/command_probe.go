package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// defaultProbeURL is where the examples serve modulus_health.
const defaultProbeURL = "http://127.0.0.1:9180/readyz"

func init() {
	registerModulusCommand(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "probe [url]",
			Short: "Exits 0 when a readiness URL answers 200 (a container health check)",
			Long: `
probe requests a readiness URL (default ` + defaultProbeURL + `, where the
examples serve modulus_health) and exits 0 when it answers 200, 1 otherwise,
printing the HTTP status and the report's status. It is the health check of a
container that has no shell or curl, such as qrphgate's image.`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				url := defaultProbeURL
				if len(args) == 1 {
					url = args[0]
				}
				timeout, _ := cmd.Flags().GetDuration("timeout")
				line, err := probeReadiness(cmd.Context(), url, timeout)
				if line != "" {
					fmt.Fprintln(cmd.OutOrStdout(), line)
				}
				return err
			},
			SilenceUsage: true,
		}
		cmd.Flags().Duration("timeout", 5*time.Second, "how long to wait for the answer")
		return cmd
	})
}

// probeReadiness requests url and describes the answer; an answer other
// than 200 (or none) is an error.
func probeReadiness(ctx context.Context, url string, timeout time.Duration) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	var rep struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep)
	line := fmt.Sprintf("%s: HTTP %d", url, resp.StatusCode)
	if rep.Status != "" {
		line += ", " + rep.Status
	}
	if resp.StatusCode != http.StatusOK {
		return line, fmt.Errorf("not ready (HTTP %d)", resp.StatusCode)
	}
	return line, nil
}
