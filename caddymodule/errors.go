package caddymodule

import "errors"

var errMethodNotAllowed = errors.New("method not allowed")
