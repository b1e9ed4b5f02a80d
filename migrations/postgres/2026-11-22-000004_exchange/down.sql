DROP TABLE trades; DROP TABLE orders; DROP TABLE markets;
