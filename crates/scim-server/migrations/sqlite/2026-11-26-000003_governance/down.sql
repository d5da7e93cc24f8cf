DROP TABLE review_items;
DROP TABLE review_campaigns;
DROP TABLE audit_heads;
DROP TABLE audit_log;
