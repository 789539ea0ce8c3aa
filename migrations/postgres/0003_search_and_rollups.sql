-- Substring search without scanning: pg_trgm GIN indexes over invoice numbers and the
-- customers' search text, which `LIKE '%term%'` uses directly (SQLite uses FTS5 trigram
-- tables, 0003 there). pg_trgm ships with PostgreSQL and is a trusted extension: a database
-- owner may create it.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX invoices_number_trgm_idx ON invoices USING gin (lower(number) gin_trgm_ops);

-- The customers' search text lives in its own table, kept in step by triggers: customers rows
-- are rewritten whenever their totals change, and every rewrite of a row with a GIN-indexed
-- column would insert a hundred-odd trigram entries again.
CREATE TABLE customer_search (
    customer_id  BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    org_id       BIGINT NOT NULL,
    search_text  TEXT   NOT NULL
);
INSERT INTO customer_search (customer_id, org_id, search_text)
SELECT id, org_id, search_text FROM customers;
CREATE INDEX customer_search_trgm_idx ON customer_search USING gin (search_text gin_trgm_ops);

CREATE FUNCTION customer_search_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_search AS s (customer_id, org_id, search_text)
    SELECT id, org_id, search_text FROM new_rows ORDER BY id
    ON CONFLICT (customer_id) DO UPDATE SET search_text = excluded.search_text
    WHERE s.search_text <> excluded.search_text;
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_search_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_search_apply();
CREATE TRIGGER customers_search_update AFTER UPDATE ON customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_search_apply();

-- The dashboard reads open invoices only: this index holds every column it needs, so its
-- figures come from the index without touching the table.
CREATE INDEX invoices_open_idx ON invoices (org_id, due_date, currency, balance_minor, customer_id)
WHERE status IN ('sent', 'overdue', 'partially_paid') AND balance_minor > 0;

-- Number search goes through the trigram index now.
DROP INDEX invoices_number_idx;

-- Balance sort within one currency pages on (balance, id) without sorting.
DROP INDEX invoices_currency_idx;
CREATE INDEX invoices_currency_idx ON invoices (org_id, currency, balance_minor, id);

-- Invoice counts and balances per (currency, status, due date, open or not): the list totals
-- of the common filters and the dashboard's aging read a few thousand rows of this instead of
-- every invoice. The write path (app/src/receivables/upsert.rs) recomputes the rows an
-- invoice write touches in the same transaction, as it does the customers' totals. "Open" is
-- the queries' definition: sent, overdue or partially paid with a balance left.
CREATE TABLE invoice_rollups (
    org_id         BIGINT  NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    currency       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    due_date       TEXT    NOT NULL,
    is_open        INTEGER NOT NULL CHECK (is_open IN (0, 1)),
    invoice_count  BIGINT  NOT NULL,
    balance_minor  BIGINT  NOT NULL,
    PRIMARY KEY (org_id, currency, status, due_date, is_open)
);

INSERT INTO invoice_rollups (org_id, currency, status, due_date, is_open, invoice_count, balance_minor)
SELECT org_id, currency, status, due_date,
       CASE WHEN status IN ('sent', 'overdue', 'partially_paid') AND balance_minor > 0 THEN 1 ELSE 0 END,
       COUNT(*), SUM(balance_minor)
FROM invoices
GROUP BY 1, 2, 3, 4, 5;
