package main

import (
	"fmt"
	"io"
	"log/slog"
)

// Log formats of --log-format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// newLogger returns the server's logger: log/slog's text handler, or its
// JSON handler (one object a line, for log shippers) with --log-format json.
// Every line about one request carries requestId, the same value as the
// x-amzn-RequestId header and the audit record's requestID, so that a log
// line leads to its record and back.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case logFormatText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case logFormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}
