module github.com/coffer-kms/coffer/asm/_gen

go 1.26.8

require github.com/mmcloughlin/avo v0.6.0

require (
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)

// avo v0.6.0 pins golang.org/x/tools v0.16.1, which does not compile with
// Go 1.26; any newer x/tools that does will do.
require golang.org/x/tools v0.52.0 // indirect
