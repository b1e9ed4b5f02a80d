DROP TRIGGER listings_fts_update;
DROP TRIGGER listings_fts_delete;
DROP TRIGGER listings_fts_insert;
DROP TABLE listings_fts;
DROP TABLE deal_feedback;
DROP TABLE deals;
DROP TABLE listing_currencies;
DROP TABLE listings;
