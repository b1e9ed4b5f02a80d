DROP TABLE payment_trades;
DROP TABLE payment_spends;
