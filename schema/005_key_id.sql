-- Which pseudonym key made each event (events' key_id, a short HMAC that names
-- the key without revealing it), so that a key rotation can be followed in the
-- warehouse. '' for events made before key ids. No view reads it: counts do not
-- depend on it.
ALTER TABLE ikd.events ADD COLUMN IF NOT EXISTS key_id LowCardinality(String) DEFAULT '' AFTER resident;
