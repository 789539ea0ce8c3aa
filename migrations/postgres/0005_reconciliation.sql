-- When the sync last compared the open invoices Duecall holds with those the accounting system
-- still has (finding invoices deleted there), in Unix milliseconds; 0 = never.
ALTER TABLE integration_connections ADD COLUMN reconciled_at BIGINT NOT NULL DEFAULT 0;
