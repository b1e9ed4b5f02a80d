DROP TABLE deal_feedback;
DROP TABLE deals;
DROP TABLE listing_currencies;
DROP TABLE listings;
