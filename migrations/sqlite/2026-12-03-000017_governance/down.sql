DROP TABLE business_log;
DROP TABLE proposal_votes;
DROP TABLE proposals;
DROP TABLE approval_rules;
