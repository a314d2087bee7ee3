PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE IF NOT EXISTS ingest_receipts (receipt_id TEXT PRIMARY KEY, ticker TEXT NOT NULL, ts INTEGER NOT NULL, bucket_5m INTEGER NOT NULL, received_ts INTEGER NOT NULL, payload_hash TEXT NOT NULL, script_version TEXT, payload_json TEXT);
INSERT INTO "ingest_receipts" VALUES('BE:1770042600000:aa','BE',1770042600000,1770042600000,1770042601234,'aa','2.5.0','{"ticker":"BE","ts":1770042600000,"price":10}');
INSERT INTO "ingest_receipts" ("receipt_id","ticker","ts","bucket_5m","received_ts","payload_hash","script_version","payload_json") VALUES
  ('BE:1770042900000:bb','BE',1770042900000,1770042900000,1770042901000,'bb','2.5.0','{"ticker":"BE","price":11}'),
  ('BE:1770043200000:cc','BE','not-a-number',1770043200000,0,'cc',NULL,'{}');
INSERT INTO "trades" VALUES(1,'x');
DELETE FROM ingest_receipts;
COMMIT;
