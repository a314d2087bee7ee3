CREATE TABLE trades(a);
INSERT INTO trades VALUES(1);
UPDATE ingest_receipts SET ticker='X';
DROP TABLE ingest_receipts;
ATTACH '/tmp/x.db' AS x;
