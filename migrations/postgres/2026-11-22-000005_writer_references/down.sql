ALTER TABLE transfers ADD CONSTRAINT transfers_currency_id_fkey FOREIGN KEY (currency_id) REFERENCES currencies (id);
ALTER TABLE transfers ADD CONSTRAINT transfers_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES holds (id);
ALTER TABLE orders ADD CONSTRAINT orders_market_id_fkey FOREIGN KEY (market_id) REFERENCES markets (id);
ALTER TABLE orders ADD CONSTRAINT orders_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES principals (id);
ALTER TABLE orders ADD CONSTRAINT orders_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES holds (id);
ALTER TABLE trades ADD CONSTRAINT trades_market_id_fkey FOREIGN KEY (market_id) REFERENCES markets (id);
ALTER TABLE trades ADD CONSTRAINT trades_taker_order_id_fkey FOREIGN KEY (taker_order_id) REFERENCES orders (id);
ALTER TABLE trades ADD CONSTRAINT trades_maker_order_id_fkey FOREIGN KEY (maker_order_id) REFERENCES orders (id);
