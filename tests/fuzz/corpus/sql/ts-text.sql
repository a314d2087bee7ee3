INSERT INTO ingest_receipts VALUES('I:1','II','abc',0,0,'h',NULL,'{}');
