DROP TABLE liability_roots;
DROP TABLE liability_salts;
