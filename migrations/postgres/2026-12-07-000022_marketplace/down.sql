DELETE FROM principals WHERE handle = 'registry-onboarding';
DROP TABLE onboarding_allowances;
DROP TABLE deal_feedback;
DROP TABLE deals;
DROP TABLE listing_currencies;
DROP TABLE listings;
