INSERT INTO ingest_receipts VALUES('E:1','EE',1770042600000,1770042600000,1770042600000,'h',NULL,'{}');
INSERT INTO ingest_receipts SELECT a.receipt_id||b.receipt_id,a.ticker,a.ts,a.bucket_5m,a.received_ts,a.payload_hash,NULL,a.payload_json FROM main.ingest_receipts a, main.ingest_receipts b, main.ingest_receipts c;
