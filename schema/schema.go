// Package schema holds the warehouse schema as numbered SQL migrations and
// the event contract (events/). Programs apply the migrations at start
// (warehouse.Migrate); an applied migration never changes: a change comes as
// a new numbered file.
package schema

import "embed"

// Migrations are the *.sql files of this folder, applied in name order.
//
//go:embed *.sql
var Migrations embed.FS
