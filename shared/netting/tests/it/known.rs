use scrip_netting::generate::{NetworkSpec, obligations};
use scrip_netting::{NettingError, Obligation, check, solve};

fn o(debtor: u32, creditor: u32, amount: u64) -> Obligation {
    Obligation {
        debtor,
        creditor,
        amount,
    }
}

#[test]
fn a_three_cycle_clears_its_smallest_debt_on_every_edge() {
    // grocer 0 owes bakery 1 owes brewer 2 owes grocer 0.
    let edges = [o(0, 1, 50), o(1, 2, 30), o(2, 0, 40)];
    let result = solve(3, &edges).expect("solve");
    assert_eq!(result.cleared, vec![30, 30, 30]);
    assert_eq!(
        (
            result.gross_before,
            result.total_cleared,
            result.gross_after()
        ),
        (120, 90, 30)
    );
    assert_eq!((result.edges_in_cycles, result.parties_in_cycles), (3, 3));
}

#[test]
fn overlapping_cycles_are_cleared_together_optimally() {
    // Two cycles share the edge 0 -> 1: 0->1->2->0 and 0->1->3->0.
    let edges = [o(0, 1, 10), o(1, 2, 6), o(2, 0, 6), o(1, 3, 7), o(3, 0, 7)];
    let result = solve(4, &edges).expect("solve");
    assert_eq!(
        result.total_cleared, 30,
        "10 through the shared edge, split 6 + 4 or 3 + 7"
    );
    assert_eq!(result.cleared[0], 10);
    check(4, &edges, &result.cleared).expect("balanced");
}

#[test]
fn a_greedy_cycle_choice_would_be_worse() {
    // Taking the long cycle 0->1->2->3->0 first (5 on four edges: 20) uses up the edges of three
    // 2-cycles worth 30; the optimum leaves the long cycle's closing edge 3 -> 0 alone.
    let edges = [
        o(0, 1, 5),
        o(1, 2, 5),
        o(2, 3, 5),
        o(3, 0, 5),
        o(1, 0, 5),
        o(3, 2, 5),
        o(2, 1, 5),
    ];
    let result = solve(4, &edges).expect("solve");
    assert_eq!(result.total_cleared, 30);
    assert_eq!(result.cleared[3], 0);
    check(4, &edges, &result.cleared).expect("balanced");
}

#[test]
fn a_graph_without_cycles_clears_nothing() {
    let edges = [o(0, 1, 10), o(1, 2, 10), o(0, 2, 5), o(3, 2, 1)];
    let result = solve(4, &edges).expect("solve");
    assert_eq!(result.total_cleared, 0);
    assert_eq!(result.cleared, vec![0; 4]);
    assert_eq!(result.edges_in_cycles, 0);
}

#[test]
fn parallel_edges_are_separate_obligations() {
    let edges = [o(0, 1, 4), o(0, 1, 6), o(1, 0, 7)];
    let result = solve(2, &edges).expect("solve");
    assert_eq!(result.total_cleared, 14);
    assert_eq!(result.cleared[2], 7);
    assert_eq!(result.cleared[0] + result.cleared[1], 7);
}

#[test]
fn zero_amounts_and_isolated_parties_are_fine() {
    let edges = [o(0, 1, 0), o(1, 0, 3)];
    assert_eq!(solve(5, &edges).expect("solve").total_cleared, 0);
    assert_eq!(solve(0, &[]).expect("empty").total_cleared, 0);
}

#[test]
fn bad_input_is_rejected() {
    assert_eq!(
        solve(2, &[o(1, 1, 5)]),
        Err(NettingError::SelfLoop { index: 0, node: 1 })
    );
    assert_eq!(
        solve(2, &[o(0, 1, 5), o(0, 2, 5)]),
        Err(NettingError::UnknownParty {
            index: 1,
            node: 2,
            parties: 2
        })
    );
}

#[test]
fn huge_amounts_do_not_overflow() {
    let max = u64::MAX;
    let edges = [
        o(0, 1, max),
        o(1, 2, max),
        o(2, 0, max),
        o(0, 2, max),
        o(2, 1, max),
        o(1, 0, max),
    ];
    let result = solve(3, &edges).expect("solve");
    assert_eq!(result.total_cleared, 6 * u128::from(max));
}

#[test]
fn generated_networks_keep_every_net_position() {
    for seed in 0..5 {
        let spec = NetworkSpec {
            firms: 2_000,
            obligations: 12_000,
            seed,
        };
        let edges = obligations(&spec);
        let result = solve(spec.firms, &edges).expect("solve");
        check(spec.firms, &edges, &result.cleared).expect("balanced");
        assert!(result.total_cleared > 0, "realistic networks have cycles");
        assert!(result.total_cleared <= result.gross_before);
    }
}
