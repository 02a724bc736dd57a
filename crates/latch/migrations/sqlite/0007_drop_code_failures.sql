-- Wrong codes are counted in latch_limits (0005) since attempts are reserved atomically
-- before a code is compared; the old failure log is no longer written.
DROP INDEX IF EXISTS selfservice_code_failures_created_idx;
DROP TABLE selfservice_code_failures;
