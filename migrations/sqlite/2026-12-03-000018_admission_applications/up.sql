-- Admission (issue 20): people ask to be admitted to a currency that requires admission; its
-- stewards admit (under the issuer's approval rule) or decline.
CREATE TABLE admission_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    applicant_id BIGINT NOT NULL REFERENCES principals (id),
    message TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'admitted', 'declined')),
    created_at_us BIGINT NOT NULL,
    decided_by BIGINT REFERENCES principals (id),
    decided_at_us BIGINT
);
CREATE INDEX admission_applications_currency ON admission_applications (currency_id, id);
CREATE INDEX admission_applications_applicant ON admission_applications (applicant_id, currency_id);
