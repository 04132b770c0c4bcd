-- Builds testdata/schema-v1.db from an empty database with migration 0001
-- applied (see TestOpenSchemaV1File). Regenerate with:
--   go test -run TestWriteSchemaV1 -write-v1 ./hub/store
INSERT INTO feedback (id, ticket, kiosk, kind, category, building, unit, room, description, phone, submitted_at, received_at)
VALUES ('0190a4b2-7c3e-7000-8000-000000000001', 'T-V1-0001', 'k-sangcheng-01', 'complaint', 'illegal_construction',
        '12号', '3', '401', '楼顶违建', '13800000000', 1782898200000000000, 1782898260000000000);
INSERT INTO kiosks (id, online, last_seen, epoch, software_version, desired_version, desired_hash)
VALUES ('k-sangcheng-01', 1, 1782898260000000000, 7, '0.1.0', 3, 'v1-hash');
UPDATE desired_seq SET value = 3;
