//! Min-cost flow with unit costs, by the primal-dual method (Dijkstra for potentials, then a
//! maximum flow on the zero-reduced-cost subgraph by shortest augmenting paths).
//!
//! Network: for every obligation `u -> v` inside a cycle, an "un-clear" arc `v -> u` with
//! capacity `amount` and cost 1; a source feeding every party left with more cleared in than
//! out, a sink draining every party with more out than in. The min-cost flow routing all of
//! it un-clears the least possible in total.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

const INF: i64 = i64::MAX / 4;

/// Arc capacities: `u64` whenever the total fits (always, in practice: half the memory per
/// arc, and scans of arcs are what the solve spends its time on), `u128` otherwise.
pub(crate) trait Capacity:
    Copy + Ord + Default + std::ops::AddAssign + std::ops::SubAssign + std::fmt::Debug
{
    fn from_amount(amount: u128) -> Self;
    fn amount(self) -> u128;
}

impl Capacity for u64 {
    fn from_amount(amount: u128) -> Self {
        u64::try_from(amount).unwrap_or(u64::MAX)
    }
    fn amount(self) -> u128 {
        u128::from(self)
    }
}

impl Capacity for u128 {
    fn from_amount(amount: u128) -> Self {
        amount
    }
    fn amount(self) -> u128 {
        self
    }
}

struct Network<C> {
    /// Arcs in CSR order: the arcs leaving node `v` are `first[v]..first[v + 1]`, stored
    /// contiguously so a scan of a node's arcs touches consecutive memory.
    head: Vec<u32>,
    cap: Vec<C>,
    /// Unit costs are -1, 0 or 1.
    cost: Vec<i8>,
    /// Position of each arc's residual partner.
    partner: Vec<u32>,
    first: Vec<u32>,
    /// Position of each input arc (`arcs[k]`) in CSR order.
    position: Vec<u32>,
    source: u32,
    sink: u32,
}

impl<C: Capacity> Network<C> {
    fn build(nodes: usize, arcs: &[(u32, u32, u128, i8)], source: u32, sink: u32) -> Self {
        let count = arcs.len() * 2;
        let mut first = vec![0_u32; nodes + 1];
        for &(from, to, _, _) in arcs {
            first[from as usize + 1] += 1;
            first[to as usize + 1] += 1;
        }
        for v in 0..nodes {
            first[v + 1] += first[v];
        }
        let mut fill = first.clone();
        let mut head = vec![0_u32; count];
        let mut cap = vec![C::default(); count];
        let mut cost = vec![0_i8; count];
        let mut partner = vec![0_u32; count];
        let mut position = vec![0_u32; arcs.len()];
        for (k, &(from, to, capacity, unit_cost)) in arcs.iter().enumerate() {
            let forward = fill[from as usize] as usize;
            fill[from as usize] += 1;
            let backward = fill[to as usize] as usize;
            fill[to as usize] += 1;
            (head[forward], cap[forward], cost[forward]) =
                (to, C::from_amount(capacity), unit_cost);
            (head[backward], cap[backward], cost[backward]) = (from, C::default(), -unit_cost);
            partner[forward] = backward as u32;
            partner[backward] = forward as u32;
            position[k] = forward as u32;
        }
        Self {
            head,
            cap,
            cost,
            partner,
            first,
            position,
            source,
            sink,
        }
    }

    fn arcs_of(&self, v: usize) -> std::ops::Range<usize> {
        self.first[v] as usize..self.first[v + 1] as usize
    }
}

/// Scratch space reused across phases so the solve allocates once.
struct Solver<C> {
    net: Network<C>,
    potential: Vec<i64>,
    dist: Vec<i64>,
    level: Vec<u32>,
    cursor: Vec<u32>,
    queue: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    path: Vec<u32>,
    /// Nodes per distance label, for the gap heuristic of [`Solver::max_flow`].
    count: Vec<u32>,
}

impl<C: Capacity> Solver<C> {
    fn reduced(&self, arc: usize, from: usize) -> i64 {
        i64::from(self.net.cost[arc]) + self.potential[from]
            - self.potential[self.net.head[arc] as usize]
    }

    /// Dijkstra on reduced costs; updates potentials. False when the sink is unreachable.
    fn reprice(&mut self) -> bool {
        self.dist.fill(INF);
        let source = self.net.source as usize;
        self.dist[source] = 0;
        self.heap.clear();
        self.heap.push(Reverse((0, source as u32)));
        let sink = self.net.sink as usize;
        while let Some(Reverse((d, v))) = self.heap.pop() {
            let v = v as usize;
            if d > self.dist[v] {
                continue;
            }
            if v == sink {
                // Every node closer than the sink is settled; the potential update below caps
                // the rest at the sink's distance, so their exact distances are not needed.
                break;
            }
            for arc in self.net.arcs_of(v) {
                if self.net.cap[arc] == C::default() {
                    continue;
                }
                let w = self.net.head[arc] as usize;
                let candidate = d + self.reduced(arc, v);
                if candidate < self.dist[w] {
                    self.dist[w] = candidate;
                    self.heap.push(Reverse((candidate, w as u32)));
                }
            }
        }
        let to_sink = self.dist[self.net.sink as usize];
        if to_sink >= INF {
            return false;
        }
        for (p, &d) in self.potential.iter_mut().zip(&self.dist) {
            *p += d.min(to_sink);
        }
        true
    }

    fn admissible(&self, arc: usize, from: usize) -> bool {
        self.net.cap[arc] > C::default() && self.reduced(arc, from) == 0
    }

    /// Maximum flow on the admissible subgraph (zero reduced cost) with the shortest
    /// augmenting path method (ISAP): exact distance-to-sink labels from one backward BFS, then
    /// local relabelling at dead ends and the gap heuristic, instead of a full BFS per round.
    fn max_flow(&mut self) {
        let nodes = self.potential.len() as u32;
        let (source, sink) = (self.net.source as usize, self.net.sink as usize);
        // Backward BFS from the sink: label = hops to the sink over admissible arcs.
        self.level.fill(nodes);
        self.count.fill(0);
        self.queue.clear();
        self.level[sink] = 0;
        self.queue.push(sink as u32);
        let mut next = 0;
        while next < self.queue.len() {
            let w = self.queue[next] as usize;
            next += 1;
            for arc in self.net.arcs_of(w) {
                let into = self.net.partner[arc] as usize;
                let x = self.net.head[arc] as usize;
                if self.level[x] == nodes && self.admissible(into, x) {
                    self.level[x] = self.level[w] + 1;
                    self.queue.push(x as u32);
                }
            }
        }
        for &label in &self.level {
            self.count[label as usize] += 1;
        }
        for v in 0..self.cursor.len() {
            self.cursor[v] = self.net.first[v];
        }
        self.path.clear();
        while self.level[source] < nodes {
            let v = match self.path.last() {
                Some(&arc) => self.net.head[arc as usize] as usize,
                None => source,
            };
            if v == sink {
                let push = self
                    .path
                    .iter()
                    .map(|&a| self.net.cap[a as usize])
                    .min()
                    .unwrap_or_default();
                let mut cut = self.path.len();
                for (i, &arc) in self.path.iter().enumerate() {
                    let arc = arc as usize;
                    self.net.cap[arc] -= push;
                    self.net.cap[self.net.partner[arc] as usize] += push;
                    if self.net.cap[arc] == C::default() && i < cut {
                        cut = i;
                    }
                }
                self.path.truncate(cut);
                continue;
            }
            let end = self.net.first[v + 1];
            let mut advanced = false;
            while self.cursor[v] < end {
                let arc = self.cursor[v] as usize;
                let w = self.net.head[arc] as usize;
                if self.level[v] == self.level[w] + 1 && self.admissible(arc, v) {
                    self.path.push(arc as u32);
                    advanced = true;
                    break;
                }
                self.cursor[v] += 1;
            }
            if advanced {
                continue;
            }
            // Dead end: relabel to one more than the lowest admissible neighbour.
            let mut lowest = nodes;
            for arc in self.net.arcs_of(v) {
                if self.admissible(arc, v) {
                    lowest = lowest.min(self.level[self.net.head[arc] as usize]);
                }
            }
            let old = self.level[v] as usize;
            self.count[old] -= 1;
            if self.count[old] == 0 && old < nodes as usize {
                // Gap: no node is `old` hops from the sink any more, so nothing above it can
                // reach the sink in this phase.
                break;
            }
            let new = (lowest + 1).min(nodes);
            self.level[v] = new;
            self.count[new as usize] += 1;
            self.cursor[v] = self.net.first[v];
            if v != source {
                self.path.pop();
            }
        }
    }
}

/// How much of each debt `(debtor, creditor, amount)` must stay uncleared, in input order;
/// minimal in total.
pub(crate) fn min_uncleared(parties: usize, debts: &[(u32, u32, u128)]) -> Vec<u128> {
    let total: u128 = debts.iter().map(|d| d.2).fold(0, u128::saturating_add);
    if total <= u128::from(u64::MAX) {
        solve_with::<u64>(parties, debts)
    } else {
        solve_with::<u128>(parties, debts)
    }
}

fn solve_with<C: Capacity>(parties: usize, debts: &[(u32, u32, u128)]) -> Vec<u128> {
    let mut imbalance = vec![0_i128; parties];
    let mut arcs: Vec<(u32, u32, u128, i8)> = Vec::with_capacity(debts.len() + parties);
    for &(debtor, creditor, amount) in debts {
        let amount_signed = i128::try_from(amount).unwrap_or(i128::MAX);
        imbalance[creditor as usize] += amount_signed;
        imbalance[debtor as usize] -= amount_signed;
        arcs.push((creditor, debtor, amount, 1));
    }
    let (source, sink) = (parties as u32, parties as u32 + 1);
    for (v, &b) in imbalance.iter().enumerate() {
        if b > 0 {
            arcs.push((source, v as u32, b.unsigned_abs(), 0));
        } else if b < 0 {
            arcs.push((v as u32, sink, b.unsigned_abs(), 0));
        }
    }
    let nodes = parties + 2;
    let mut solver = Solver::<C> {
        net: Network::build(nodes, &arcs, source, sink),
        potential: vec![0; nodes],
        dist: vec![0; nodes],
        level: vec![0; nodes],
        cursor: vec![0; nodes],
        queue: Vec::with_capacity(nodes),
        heap: BinaryHeap::with_capacity(nodes),
        path: Vec::new(),
        count: vec![0; nodes + 1],
    };
    while solver.reprice() {
        solver.max_flow();
    }
    // The flow on un-clear arc k is what its partner can now send back.
    (0..debts.len())
        .map(|k| {
            solver.net.cap[solver.net.partner[solver.net.position[k] as usize] as usize].amount()
        })
        .collect()
}
