// Package schema holds the warehouse schema as numbered SQL migrations and
// the event contract (events/). Programs apply the migrations at start; every
// statement is idempotent, so applying them again changes nothing.
package schema

import "embed"

// Migrations are the *.sql files of this folder, applied in name order.
//
//go:embed *.sql
var Migrations embed.FS
