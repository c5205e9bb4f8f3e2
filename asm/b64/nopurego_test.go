//go:build !purego

package b64

const purego = false
