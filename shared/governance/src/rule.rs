//! The pure core of approvals: which actions a business guards, how many distinct owners
//! each needs, and whether a proposal's decisions so far approve it, reject it, or wait.

use std::collections::BTreeSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use scrip_domain::PrincipalId;

/// Something a business does that its approval rule may guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Paying out of the business's issuing account (in a currency it issues).
    Issue,
    /// A currency's credit limit, maximum balance, member credit limits.
    Limits,
    /// Opening a market for one of its currencies.
    Markets,
    /// Adding, promoting, demoting or removing a member.
    Members,
    /// A currency's other policies (fees, demurrage, admission, maximum payment, seals).
    Policy,
    /// The approval rule itself: guarded by itself whenever it asks for more than one owner.
    Approvals,
}

impl Action {
    /// What a rule's `of` may name (the rule itself is always guarded by itself).
    pub const GUARDABLE: [Self; 5] = [
        Self::Issue,
        Self::Limits,
        Self::Markets,
        Self::Members,
        Self::Policy,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Limits => "limits",
            Self::Markets => "markets",
            Self::Members => "members",
            Self::Policy => "policy",
            Self::Approvals => "approvals",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::GUARDABLE
            .into_iter()
            .chain([Self::Approvals])
            .find(|action| action.as_str() == raw)
    }
}

/// A business's rule: these actions need `required` distinct owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    pub required: u32,
    pub actions: BTreeSet<Action>,
    /// Issuing needs approvals only above this amount (in the currency's units).
    pub issue_above: Option<Decimal>,
}

impl ApprovalRule {
    /// The rule of a business that set none: every owner acts alone.
    pub fn alone() -> Self {
        Self {
            required: 1,
            actions: BTreeSet::new(),
            issue_above: None,
        }
    }

    /// How many owners `action` needs under this rule (1: the caller alone).
    pub fn needed_for(&self, action: Action) -> u32 {
        let guarded = action == Action::Approvals || self.actions.contains(&action);
        if guarded { self.required } else { 1 }
    }

    /// How many owners paying `amount` out of the issuing account needs.
    pub fn needed_to_issue(&self, amount: Decimal) -> u32 {
        match self.issue_above {
            Some(threshold) if amount <= threshold => 1,
            _ => self.needed_for(Action::Issue),
        }
    }

    /// The `of` list as stored: sorted names, comma-separated.
    pub fn actions_text(&self) -> String {
        let names: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        names.join(",")
    }
}

/// Why a rule as asked for cannot be set, and under which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRefusal {
    pub field: &'static str,
    pub detail: String,
}

fn refusal(field: &'static str, detail: impl Into<String>) -> RuleRefusal {
    RuleRefusal {
        field,
        detail: detail.into(),
    }
}

/// A rule from its request, for a business with `owners` owners now.
pub fn parse_rule(
    required: i64,
    of: &[String],
    issue_above: Option<&str>,
    owners: usize,
) -> Result<ApprovalRule, RuleRefusal> {
    let most = i64::try_from(owners).unwrap_or(i64::MAX);
    if required < 1 || required > most {
        return Err(refusal(
            "required",
            format!(
                "required is how many distinct owners must agree: from 1 to the {owners} owner(s) the business has"
            ),
        ));
    }
    let mut actions = BTreeSet::new();
    for raw in of {
        match Action::parse(raw).filter(|a| Action::GUARDABLE.contains(a)) {
            Some(action) => actions.insert(action),
            None => {
                return Err(refusal(
                    "of",
                    format!(
                        "{raw:?} is not an action a rule guards; it may name issue, limits, markets, members and policy"
                    ),
                ));
            }
        };
    }
    if required > 1 {
        // Whoever may change the owners alone could make the rule's other owners himself.
        actions.insert(Action::Members);
    }
    let issue_above = issue_above.map(parse_threshold).transpose()?;
    Ok(ApprovalRule {
        required: u32::try_from(required).unwrap_or(u32::MAX),
        actions,
        issue_above,
    })
}

fn parse_threshold(raw: &str) -> Result<Decimal, RuleRefusal> {
    let bad = || {
        refusal(
            "issue_above",
            format!("issue_above is an amount such as \"100.00\", not {raw:?}"),
        )
    };
    let value = Decimal::from_str_exact(raw.trim()).map_err(|_| bad())?;
    if value.is_sign_negative() {
        return Err(bad());
    }
    Ok(value.normalize())
}

/// A stored rule back from its columns.
pub fn stored_rule(required: i32, actions: &str, issue_above: Option<&str>) -> ApprovalRule {
    ApprovalRule {
        required: u32::try_from(required).unwrap_or(1).max(1),
        actions: actions.split(',').filter_map(Action::parse).collect(),
        issue_above: issue_above.and_then(|raw| Decimal::from_str(raw).ok()),
    }
}

/// Where a proposal stands after its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// Enough distinct owners approved: the action runs now.
    Approved,
    /// So many owners rejected that it can no longer get enough approvals.
    Rejected,
    /// Waiting for `missing` more approvals.
    Open { missing: u32 },
}

/// Counts the decisions of the business's current owners only (one who is no longer an
/// owner no longer speaks for it); each owner counts once, whatever it sent.
pub fn tally(
    required: u32,
    owners: &BTreeSet<PrincipalId>,
    votes: &[(PrincipalId, bool)],
) -> Tally {
    let mut approving = BTreeSet::new();
    let mut rejecting = BTreeSet::new();
    for &(owner, approve) in votes.iter().filter(|(who, _)| owners.contains(who)) {
        if approve {
            approving.insert(owner);
        } else {
            rejecting.insert(owner);
        }
    }
    let approved = u32::try_from(approving.len()).unwrap_or(u32::MAX);
    let could_still = owners.len().saturating_sub(rejecting.len());
    if approved >= required {
        Tally::Approved
    } else if u32::try_from(could_still).unwrap_or(u32::MAX) < required {
        Tally::Rejected
    } else {
        Tally::Open {
            missing: required - approved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i64]) -> BTreeSet<PrincipalId> {
        raw.iter().copied().map(PrincipalId::new).collect()
    }

    #[test]
    fn two_of_three_needs_two_distinct_owners() {
        let owners = ids(&[1, 2, 3]);
        let one = [(PrincipalId::new(1), true)];
        assert_eq!(tally(2, &owners, &one), Tally::Open { missing: 1 });
        let twice = [(PrincipalId::new(1), true), (PrincipalId::new(1), true)];
        assert_eq!(tally(2, &owners, &twice), Tally::Open { missing: 1 });
        let stranger = [(PrincipalId::new(1), true), (PrincipalId::new(9), true)];
        assert_eq!(tally(2, &owners, &stranger), Tally::Open { missing: 1 });
        let two = [(PrincipalId::new(1), true), (PrincipalId::new(3), true)];
        assert_eq!(tally(2, &owners, &two), Tally::Approved);
    }

    #[test]
    fn a_proposal_is_rejected_once_it_can_no_longer_pass() {
        let owners = ids(&[1, 2, 3]);
        let one_no = [(PrincipalId::new(1), true), (PrincipalId::new(2), false)];
        assert_eq!(tally(2, &owners, &one_no), Tally::Open { missing: 1 });
        let two_no = [(PrincipalId::new(2), false), (PrincipalId::new(3), false)];
        assert_eq!(tally(2, &owners, &two_no), Tally::Rejected);
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let of = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let rule = parse_rule(2, &of(&["issue", "limits"]), Some("100.50"), 3).expect("rule");
        // Members are always guarded by a rule that needs more than one owner.
        assert_eq!(rule.actions_text(), "issue,limits,members");
        assert_eq!(rule.needed_to_issue(Decimal::new(10050, 2)), 1);
        assert_eq!(rule.needed_to_issue(Decimal::new(10051, 2)), 2);
        assert_eq!(rule.needed_for(Action::Markets), 1);
        assert_eq!(rule.needed_for(Action::Approvals), 2);
        assert_eq!(
            parse_rule(4, &[], None, 3).expect_err("refused").field,
            "required"
        );
        assert_eq!(
            parse_rule(0, &[], None, 3).expect_err("refused").field,
            "required"
        );
        let unknown = parse_rule(2, &of(&["approvals"]), None, 3).expect_err("refused");
        assert_eq!(unknown.field, "of");
        assert_eq!(
            parse_rule(2, &[], Some("-1"), 3)
                .expect_err("refused")
                .field,
            "issue_above"
        );
        assert_eq!(
            parse_rule(2, &[], Some("1e3"), 3)
                .expect_err("refused")
                .field,
            "issue_above"
        );
        let back = stored_rule(2, &rule.actions_text(), Some("100.5"));
        assert_eq!(back, rule);
    }
}
