-- Nothing reads the per-day sets of residents any more (the views, the board
-- and the reconciliation count from ikd.first_seen and ikd.latest_daily), and
-- they were as large as the ledger: dropped, view first so that no insert
-- finds it without its table.
DROP VIEW IF EXISTS ikd.residents_daily_mv;
DROP TABLE IF EXISTS ikd.residents_daily;
