-- The exchange: markets, orders and trades. Prices are integer ticks and quantities integer
-- lots of the market; tick_size_atoms is in quote atoms per whole base unit and lot_size_atoms
-- in base atoms, so every notional is an exact number of quote atoms.
-- Order and trade ids are assigned by the market's owner process (market id in the high bits).

CREATE TABLE markets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL UNIQUE,
    base_currency_id BIGINT NOT NULL REFERENCES currencies (id),
    quote_currency_id BIGINT NOT NULL REFERENCES currencies (id),
    tick_size_atoms BIGINT NOT NULL CHECK (tick_size_atoms > 0),
    lot_size_atoms BIGINT NOT NULL CHECK (lot_size_atoms > 0),
    fee_bps INTEGER NOT NULL CHECK (fee_bps BETWEEN 0 AND 1000),
    created_by BIGINT NOT NULL REFERENCES principals (id),
    created_at_us BIGINT NOT NULL,
    UNIQUE (base_currency_id, quote_currency_id),
    CHECK (base_currency_id <> quote_currency_id)
);

CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    market_id BIGINT NOT NULL REFERENCES markets (id),
    owner_id BIGINT NOT NULL REFERENCES principals (id),
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type TEXT NOT NULL CHECK (order_type IN ('limit', 'market')),
    price_ticks BIGINT CHECK (price_ticks > 0),
    quantity_lots BIGINT NOT NULL CHECK (quantity_lots > 0),
    filled_lots BIGINT NOT NULL CHECK (filled_lots >= 0 AND filled_lots <= quantity_lots),
    status TEXT NOT NULL CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'expired')),
    time_in_force TEXT NOT NULL CHECK (time_in_force IN ('gtc', 'ioc', 'fok')),
    post_only INTEGER NOT NULL CHECK (post_only IN (0, 1)),
    client_order_id TEXT,
    hold_id BIGINT REFERENCES holds (id),
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX orders_owner ON orders (owner_id, id);
CREATE INDEX orders_open ON orders (market_id, id) WHERE status IN ('open', 'partially_filled');

CREATE TABLE trades (
    id BIGINT PRIMARY KEY,
    market_id BIGINT NOT NULL REFERENCES markets (id),
    taker_order_id BIGINT NOT NULL REFERENCES orders (id),
    maker_order_id BIGINT NOT NULL REFERENCES orders (id),
    taker_side TEXT NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    price_ticks BIGINT NOT NULL CHECK (price_ticks > 0),
    quantity_lots BIGINT NOT NULL CHECK (quantity_lots > 0),
    -- Each side's fee, in the currency it received: the buyer's in base, the seller's in quote.
    buyer_fee_atoms BIGINT NOT NULL CHECK (buyer_fee_atoms >= 0),
    seller_fee_atoms BIGINT NOT NULL CHECK (seller_fee_atoms >= 0),
    created_at_us BIGINT NOT NULL
);
CREATE INDEX trades_market ON trades (market_id, id);
CREATE INDEX trades_taker ON trades (taker_order_id);
CREATE INDEX trades_maker ON trades (maker_order_id);
