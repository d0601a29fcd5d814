package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/region"
)

// Migrate applies every migration of fsys (*.sql, in name order) and loads
// the reference regions. A migration already applied with the same content is
// skipped; one whose content changed is applied again, which its idempotent
// statements allow. Migrations are recorded in ikd.schema_migrations.
func Migrate(ctx context.Context, conn driver.Conn, fsys fs.FS, ref *region.Reference, logger *slog.Logger) error {
	for _, ddl := range []string{
		"CREATE DATABASE IF NOT EXISTS ikd",
		`CREATE TABLE IF NOT EXISTS ikd.schema_migrations (name String, sha256 String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
		 ENGINE = ReplacingMergeTree(applied_at) ORDER BY name`,
	} {
		if err := conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("migrate: prepare: %w", err)
		}
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return fmt.Errorf("migrate: list: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("migrate: read %s: %w", name, err)
		}
		sum := sha256.Sum256(text)
		digest := hex.EncodeToString(sum[:])
		if applied[name] == digest {
			continue
		}
		for i, stmt := range Statements(string(text)) {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate: %s statement %d: %w", name, i+1, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO ikd.schema_migrations (name, sha256) VALUES (?, ?)", name, digest); err != nil {
			return fmt.Errorf("migrate: record %s: %w", name, err)
		}
		if logger != nil {
			logger.Info("schema migration applied", "migration", name)
		}
	}
	return loadReference(ctx, conn, ref, logger)
}

func appliedMigrations(ctx context.Context, conn driver.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, argMax(sha256, applied_at) FROM ikd.schema_migrations GROUP BY name")
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
	}
	defer rows.Close()
	applied := map[string]string{}
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
		}
		applied[name] = sum
	}
	return applied, rows.Err()
}

// Statements splits a migration into its statements: each ends with a
// semicolon at the end of a line. Comment-only pieces are dropped.
func Statements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		cur.WriteString(line)
		if !strings.HasSuffix(strings.TrimSpace(line), ";") {
			continue
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); hasCode(stmt) {
			out = append(out, stmt)
		}
		cur.Reset()
	}
	if stmt := strings.TrimSpace(cur.String()); hasCode(stmt) {
		out = append(out, stmt)
	}
	return out
}

func hasCode(stmt string) bool {
	for _, line := range strings.Split(stmt, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
			return true
		}
	}
	return false
}

// loadReference fills ikd.provinces and ikd.cities when they do not hold
// exactly the shipped reference data.
func loadReference(ctx context.Context, conn driver.Conn, ref *region.Reference, logger *slog.Logger) error {
	provinces, cities := ref.Provinces(), ref.Cities()
	var haveProvinces, haveCities uint64
	err := conn.QueryRow(ctx, `SELECT (SELECT count() FROM ikd.provinces FINAL), (SELECT count() FROM ikd.cities FINAL)`).
		Scan(&haveProvinces, &haveCities)
	if err != nil {
		return fmt.Errorf("migrate: count reference regions: %w", err)
	}
	if haveProvinces == uint64(len(provinces)) && haveCities == uint64(len(cities)) {
		return nil
	}
	pb, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.provinces (code, name)")
	if err != nil {
		return fmt.Errorf("migrate: load provinces: %w", err)
	}
	for _, p := range provinces {
		if err := pb.Append(p.Code, p.Name); err != nil {
			return fmt.Errorf("migrate: load provinces: %w", err)
		}
	}
	if err := pb.Send(); err != nil {
		return fmt.Errorf("migrate: load provinces: %w", err)
	}
	cb, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.cities (code, province_code, name)")
	if err != nil {
		return fmt.Errorf("migrate: load cities: %w", err)
	}
	for _, c := range cities {
		if err := cb.Append(c.Code, c.ProvinceCode, c.Name); err != nil {
			return fmt.Errorf("migrate: load cities: %w", err)
		}
	}
	if err := cb.Send(); err != nil {
		return fmt.Errorf("migrate: load cities: %w", err)
	}
	if logger != nil {
		logger.Info("reference regions loaded", "provinces", len(provinces), "cities", len(cities))
	}
	return nil
}
