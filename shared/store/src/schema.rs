//! The portable schema, kept by hand in step with `migrations/{sqlite,postgres}`
//! (the `schema_parity` test checks the two migration folders agree).

diesel::table! {
    principals (id) {
        id -> BigInt,
        handle -> Text,
        kind -> Text,
        display_name -> Nullable<Text>,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    currencies (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        issuer_id -> BigInt,
        scale -> Integer,
        credit_limit_atoms -> BigInt,
        max_balance_atoms -> Nullable<BigInt>,
        unit -> Text,
        par -> Text,
        created_at_us -> BigInt,
        kind -> Text,
        member_credit_limit_atoms -> BigInt,
        max_payment_atoms -> Nullable<BigInt>,
        transfer_fee_bps -> Nullable<Integer>,
        transfer_fee_min_atoms -> BigInt,
        transfer_fee_to_id -> Nullable<BigInt>,
        demurrage_rate_bps -> Nullable<Integer>,
        demurrage_period -> Nullable<Text>,
        demurrage_to_id -> Nullable<BigInt>,
        demurrage_through -> Nullable<BigInt>,
        requires_admission -> Integer,
        freezable -> Integer,
        sealed -> Text,
        backing_currency_id -> Nullable<BigInt>,
        backing_ratio_bps -> Nullable<Integer>,
        backing_lock_days -> Nullable<Integer>,
        joining_fee_atoms -> Nullable<BigInt>,
        joining_fee_currency_id -> Nullable<BigInt>,
        joining_fee_refundable_after_days -> Nullable<Integer>,
    }
}

diesel::table! {
    accounts (id) {
        id -> BigInt,
        principal_id -> BigInt,
        currency_id -> BigInt,
        balance_atoms -> BigInt,
        held_atoms -> BigInt,
        floor_atoms -> BigInt,
        ceiling_atoms -> Nullable<BigInt>,
        created_at_us -> BigInt,
        frozen -> Integer,
    }
}

diesel::table! {
    currency_members (currency_id, principal_id) {
        currency_id -> BigInt,
        principal_id -> BigInt,
        credit_limit_atoms -> BigInt,
        admitted_at_us -> BigInt,
        joining_fee_atoms -> BigInt,
        joining_fee_currency_id -> Nullable<BigInt>,
        refundable_from_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    demurrage_charges (account_id, period) {
        account_id -> BigInt,
        period -> BigInt,
        currency_id -> BigInt,
        due_atoms -> BigInt,
        charged_atoms -> BigInt,
        transfer_id -> Nullable<BigInt>,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    holds (id) {
        id -> BigInt,
        account_id -> BigInt,
        amount_atoms -> BigInt,
        remaining_atoms -> BigInt,
        reason -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    transfers (id) {
        id -> BigInt,
        currency_id -> BigInt,
        from_account_id -> BigInt,
        to_account_id -> BigInt,
        amount_atoms -> BigInt,
        kind -> Text,
        memo -> Nullable<Text>,
        hold_id -> Nullable<BigInt>,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (principal_id, idempotency_key) {
        principal_id -> BigInt,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Integer,
        response_body -> Text,
        created_at_us -> BigInt,
    }
}

diesel::joinable!(currencies -> principals (issuer_id));
diesel::joinable!(accounts -> principals (principal_id));
diesel::joinable!(accounts -> currencies (currency_id));
diesel::joinable!(holds -> accounts (account_id));
diesel::joinable!(currency_members -> currencies (currency_id));
diesel::joinable!(demurrage_charges -> accounts (account_id));
diesel::joinable!(transfers -> currencies (currency_id));
diesel::joinable!(idempotency_keys -> principals (principal_id));

diesel::table! {
    credentials (principal_id) {
        principal_id -> BigInt,
        password_hash -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    memberships (business_id, member_id) {
        business_id -> BigInt,
        member_id -> BigInt,
        role -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    principal_roles (principal_id, role) {
        principal_id -> BigInt,
        role -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    clearing_opt_outs (business_id) {
        business_id -> BigInt,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    clearing_runs (id) {
        id -> BigInt,
        unit -> Text,
        dry_run -> Integer,
        started_at_us -> BigInt,
        finished_at_us -> BigInt,
        participants -> BigInt,
        edges -> BigInt,
        cycles -> BigInt,
        requested_by -> Nullable<BigInt>,
        granule_value_e16 -> BigInt,
        gross_before_granules -> BigInt,
        cleared_granules -> BigInt,
        gross_after_granules -> BigInt,
        graph_digest -> Nullable<Text>,
        preview_of -> Nullable<BigInt>,
    }
}

diesel::table! {
    clearing_intents (id) {
        id -> BigInt,
        holder_id -> BigInt,
        give_currency_id -> BigInt,
        want_currency_id -> BigInt,
        max_atoms -> BigInt,
        remaining_atoms -> BigInt,
        status -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    clearing_intent_fills (run_id, intent_id) {
        run_id -> BigInt,
        intent_id -> BigInt,
        granules -> BigInt,
        gave_atoms -> BigInt,
        received_atoms -> BigInt,
    }
}

diesel::table! {
    liability_salts (account_id) {
        account_id -> BigInt,
        currency_id -> BigInt,
        salt -> Text,
    }
}

diesel::table! {
    liability_roots (id) {
        id -> BigInt,
        currency_id -> BigInt,
        root -> Text,
        total_atoms -> BigInt,
        holders -> BigInt,
        as_of_us -> BigInt,
    }
}

diesel::table! {
    clearing_positions (run_id, business_id) {
        run_id -> BigInt,
        business_id -> BigInt,
        owes_before_granules -> BigInt,
        owed_before_granules -> BigInt,
        owes_after_granules -> BigInt,
        owed_after_granules -> BigInt,
    }
}

diesel::table! {
    clearing_balances (run_id, business_id, currency_id) {
        run_id -> BigInt,
        business_id -> BigInt,
        currency_id -> BigInt,
        before_atoms -> BigInt,
        after_atoms -> BigInt,
    }
}

diesel::table! {
    clearing_settlements (id) {
        id -> BigInt,
        run_id -> BigInt,
        debtor_id -> BigInt,
        creditor_id -> BigInt,
        source -> Text,
        currency_id -> Nullable<BigInt>,
        transfer_id -> Nullable<BigInt>,
        obligation_id -> Nullable<BigInt>,
        granules -> BigInt,
    }
}

diesel::table! {
    obligations (id) {
        id -> BigInt,
        debtor_id -> BigInt,
        creditor_id -> BigInt,
        unit -> Text,
        amount_atoms -> BigInt,
        remaining_atoms -> BigInt,
        memo -> Nullable<Text>,
        status -> Text,
        created_at_us -> BigInt,
        accepted_at_us -> Nullable<BigInt>,
        closed -> Nullable<Text>,
        closed_at_us -> Nullable<BigInt>,
        related -> Integer,
    }
}

diesel::joinable!(clearing_settlements -> clearing_runs (run_id));
diesel::joinable!(clearing_intent_fills -> clearing_runs (run_id));
diesel::joinable!(clearing_intent_fills -> clearing_intents (intent_id));
diesel::joinable!(credentials -> principals (principal_id));
diesel::joinable!(principal_roles -> principals (principal_id));

diesel::table! {
    invitations (business_id, member_id) {
        business_id -> BigInt,
        member_id -> BigInt,
        role -> Text,
        invited_by -> BigInt,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        principal_id -> BigInt,
        created_at_us -> BigInt,
        expires_at_us -> BigInt,
        revoked_at_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> BigInt,
        issued_at_us -> BigInt,
        used_at_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    payment_requests (id) {
        id -> Text,
        to_id -> BigInt,
        currency_id -> BigInt,
        amount_atoms -> BigInt,
        memo -> Nullable<Text>,
        created_by -> BigInt,
        created_at_us -> BigInt,
        expires_at_us -> BigInt,
        paid_by -> Nullable<BigInt>,
        transfer_id -> Nullable<BigInt>,
        paid_at_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    approval_rules (business_id) {
        business_id -> BigInt,
        required -> Integer,
        actions -> Text,
        issue_above -> Nullable<Text>,
        set_by -> BigInt,
        set_at_us -> BigInt,
    }
}

diesel::table! {
    proposals (id) {
        id -> BigInt,
        business_id -> BigInt,
        action -> Text,
        payload -> Text,
        summary -> Text,
        proposed_by -> BigInt,
        required -> Integer,
        status -> Text,
        outcome -> Nullable<Text>,
        created_at_us -> BigInt,
        expires_at_us -> BigInt,
        decided_at_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    proposal_votes (proposal_id, owner_id) {
        proposal_id -> BigInt,
        owner_id -> BigInt,
        approve -> Integer,
        at_us -> BigInt,
    }
}

diesel::table! {
    business_log (id) {
        id -> BigInt,
        business_id -> BigInt,
        actor_id -> BigInt,
        action -> Text,
        detail -> Text,
        at_us -> BigInt,
    }
}

diesel::table! {
    admission_applications (id) {
        id -> BigInt,
        currency_id -> BigInt,
        applicant_id -> BigInt,
        message -> Nullable<Text>,
        status -> Text,
        created_at_us -> BigInt,
        decided_by -> Nullable<BigInt>,
        decided_at_us -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    payment_requests,
    sessions,
    refresh_tokens,
    principals,
    credentials,
    memberships,
    invitations,
    principal_roles,
    currencies,
    currency_members,
    demurrage_charges,
    accounts,
    holds,
    transfers,
    idempotency_keys,
    clearing_opt_outs,
    clearing_runs,
    clearing_settlements,
    clearing_positions,
    clearing_balances,
    liability_salts,
    liability_roots,
    clearing_intents,
    clearing_intent_fills,
    obligations,
    markets,
    orders,
    trades,
    payment_spends,
    payment_trades,
    approval_rules,
    proposals,
    proposal_votes,
    business_log,
    admission_applications,
    listings,
    listing_currencies,
    deals,
    deal_feedback,
    onboarding_allowances,
);

diesel::table! {
    markets (id) {
        id -> BigInt,
        symbol -> Text,
        base_currency_id -> BigInt,
        quote_currency_id -> BigInt,
        tick_size_atoms -> BigInt,
        lot_size_atoms -> BigInt,
        fee_bps -> Integer,
        created_by -> BigInt,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        market_id -> BigInt,
        owner_id -> BigInt,
        side -> Text,
        order_type -> Text,
        price_ticks -> Nullable<BigInt>,
        quantity_lots -> BigInt,
        filled_lots -> BigInt,
        status -> Text,
        time_in_force -> Text,
        post_only -> Integer,
        client_order_id -> Nullable<Text>,
        hold_id -> Nullable<BigInt>,
        created_at_us -> BigInt,
        updated_at_us -> BigInt,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    payment_spends (transfer_id, currency_id) {
        transfer_id -> BigInt,
        currency_id -> BigInt,
        spent_atoms -> BigInt,
        change_atoms -> BigInt,
    }
}

diesel::table! {
    payment_trades (transfer_id, trade_id) {
        transfer_id -> BigInt,
        trade_id -> BigInt,
    }
}

diesel::table! {
    trades (id) {
        id -> BigInt,
        market_id -> BigInt,
        taker_order_id -> BigInt,
        maker_order_id -> BigInt,
        taker_side -> Text,
        price_ticks -> BigInt,
        quantity_lots -> BigInt,
        buyer_fee_atoms -> BigInt,
        seller_fee_atoms -> BigInt,
        created_at_us -> BigInt,
    }
}

diesel::joinable!(orders -> markets (market_id));

diesel::joinable!(payment_spends -> transfers (transfer_id));
diesel::joinable!(payment_trades -> trades (trade_id));

// The marketplace. The search index is not in this schema: it differs by backend (an FTS5
// table `listings_fts` on SQLite, a generated `listings.search` tsvector on PostgreSQL) and is
// only read through raw SQL in `scrip-marketplace`.
diesel::table! {
    listings (id) {
        id -> BigInt,
        holder_id -> BigInt,
        author_id -> BigInt,
        kind -> Text,
        title -> Text,
        description -> Text,
        price_atoms -> Nullable<BigInt>,
        price_currency_id -> Nullable<BigInt>,
        category -> Nullable<Text>,
        place -> Nullable<Text>,
        status -> Text,
        created_at_us -> BigInt,
        updated_at_us -> BigInt,
    }
}

diesel::table! {
    listing_currencies (listing_id, currency_id) {
        listing_id -> BigInt,
        currency_id -> BigInt,
    }
}

diesel::table! {
    deals (id) {
        id -> BigInt,
        listing_id -> BigInt,
        buyer_id -> BigInt,
        seller_id -> BigInt,
        opened_by_id -> BigInt,
        terms -> Text,
        status -> Text,
        currency_id -> BigInt,
        amount_atoms -> Nullable<BigInt>,
        transfer_id -> Nullable<BigInt>,
        onboarding_atoms -> BigInt,
        created_at_us -> BigInt,
        paid_at_us -> Nullable<BigInt>,
        request_key -> Nullable<Text>,
        request_hash -> Nullable<Text>,
        paid_key -> Nullable<Text>,
        paid_hash -> Nullable<Text>,
    }
}

diesel::table! {
    deal_feedback (deal_id, from_id) {
        deal_id -> BigInt,
        from_id -> BigInt,
        to_id -> BigInt,
        rating -> Integer,
        comment -> Nullable<Text>,
        created_at_us -> BigInt,
        updated_at_us -> BigInt,
    }
}

diesel::joinable!(listing_currencies -> listings (listing_id));
diesel::joinable!(deals -> listings (listing_id));
diesel::joinable!(deal_feedback -> deals (deal_id));

diesel::table! {
    onboarding_allowances (principal_id) {
        principal_id -> BigInt,
        currency_id -> BigInt,
        granted_atoms -> BigInt,
        used_atoms -> BigInt,
        created_at_us -> BigInt,
    }
}
