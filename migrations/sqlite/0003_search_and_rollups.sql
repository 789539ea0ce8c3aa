-- Substring search without scanning: trigram indexes over invoice numbers and the customers'
-- search text. SQLite's are FTS5 tables with the trigram tokenizer that read their text from
-- the base table ("external content") and are kept in step by triggers; PostgreSQL's are
-- pg_trgm GIN indexes (0003 there). Terms shorter than three characters have no trigram and
-- are matched by scanning.

CREATE VIRTUAL TABLE invoice_number_search USING fts5(
    number, content = 'invoices', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO invoice_number_search (invoice_number_search) VALUES ('rebuild');

CREATE TRIGGER invoices_search_insert AFTER INSERT ON invoices BEGIN
    INSERT INTO invoice_number_search (rowid, number) VALUES (new.id, new.number);
END;
CREATE TRIGGER invoices_search_delete AFTER DELETE ON invoices BEGIN
    INSERT INTO invoice_number_search (invoice_number_search, rowid, number)
    VALUES ('delete', old.id, old.number);
END;
CREATE TRIGGER invoices_search_update AFTER UPDATE OF number ON invoices
WHEN old.number <> new.number BEGIN
    INSERT INTO invoice_number_search (invoice_number_search, rowid, number)
    VALUES ('delete', old.id, old.number);
    INSERT INTO invoice_number_search (rowid, number) VALUES (new.id, new.number);
END;

CREATE VIRTUAL TABLE customer_search USING fts5(
    search_text, content = 'customers', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO customer_search (customer_search) VALUES ('rebuild');

CREATE TRIGGER customers_search_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customer_search (rowid, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER customers_search_delete AFTER DELETE ON customers BEGIN
    INSERT INTO customer_search (customer_search, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
END;
CREATE TRIGGER customers_search_update AFTER UPDATE OF search_text ON customers
WHEN old.search_text <> new.search_text BEGIN
    INSERT INTO customer_search (customer_search, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
    INSERT INTO customer_search (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- The dashboard reads open invoices only: this index holds every column it needs, so its
-- figures come from the index without touching the table.
CREATE INDEX invoices_open_idx ON invoices (org_id, due_date, currency, balance_minor, customer_id)
WHERE status IN ('sent', 'overdue', 'partially_paid') AND balance_minor > 0;

-- Number search goes through the trigram table now.
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
