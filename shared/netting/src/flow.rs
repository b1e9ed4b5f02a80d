//! Min-cost flow with unit costs, by the primal-dual method (Dijkstra for potentials, Dinic
//! blocking flows on the zero-reduced-cost subgraph).
//!
//! Network: for every obligation `u -> v` inside a cycle, an "un-clear" arc `v -> u` with
//! capacity `amount` and cost 1; a source feeding every party left with more cleared in than
//! out, a sink draining every party with more out than in. The min-cost flow routing all of
//! it un-clears the least possible in total.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::Obligation;

const INF: i64 = i64::MAX / 4;

struct Network {
    /// Per arc id (forward arc `2k`, its residual partner `2k + 1`).
    head: Vec<u32>,
    cap: Vec<u128>,
    cost: Vec<i64>,
    /// CSR: arcs leaving node `v` are `adj[first[v]..first[v + 1]]`.
    first: Vec<u32>,
    adj: Vec<u32>,
    source: u32,
    sink: u32,
}

impl Network {
    fn build(nodes: usize, arcs: &[(u32, u32, u128, i64)], source: u32, sink: u32) -> Self {
        let count = arcs.len() * 2;
        let mut head = vec![0_u32; count];
        let mut cap = vec![0_u128; count];
        let mut cost = vec![0_i64; count];
        let mut tail = vec![0_u32; count];
        for (k, &(from, to, capacity, unit_cost)) in arcs.iter().enumerate() {
            (tail[2 * k], head[2 * k], cap[2 * k], cost[2 * k]) = (from, to, capacity, unit_cost);
            (tail[2 * k + 1], head[2 * k + 1], cap[2 * k + 1], cost[2 * k + 1]) = (to, from, 0, -unit_cost);
        }
        let mut first = vec![0_u32; nodes + 1];
        for &t in &tail {
            first[t as usize + 1] += 1;
        }
        for v in 0..nodes {
            first[v + 1] += first[v];
        }
        let mut fill = first.clone();
        let mut adj = vec![0_u32; count];
        for (arc, &t) in tail.iter().enumerate() {
            adj[fill[t as usize] as usize] = arc as u32;
            fill[t as usize] += 1;
        }
        Self { head, cap, cost, first, adj, source, sink }
    }

    fn arcs_of(&self, v: usize) -> std::ops::Range<usize> {
        self.first[v] as usize..self.first[v + 1] as usize
    }
}

/// Scratch space reused across phases so the solve allocates once.
struct Solver {
    net: Network,
    potential: Vec<i64>,
    dist: Vec<i64>,
    level: Vec<u32>,
    cursor: Vec<u32>,
    queue: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    path: Vec<u32>,
}

impl Solver {
    fn reduced(&self, arc: usize, from: usize) -> i64 {
        self.net.cost[arc] + self.potential[from] - self.potential[self.net.head[arc] as usize]
    }

    /// Dijkstra on reduced costs; updates potentials. False when the sink is unreachable.
    fn reprice(&mut self) -> bool {
        self.dist.fill(INF);
        let source = self.net.source as usize;
        self.dist[source] = 0;
        self.heap.clear();
        self.heap.push(Reverse((0, source as u32)));
        while let Some(Reverse((d, v))) = self.heap.pop() {
            let v = v as usize;
            if d > self.dist[v] {
                continue;
            }
            for i in self.net.arcs_of(v) {
                let arc = self.net.adj[i] as usize;
                if self.net.cap[arc] == 0 {
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
        self.net.cap[arc] > 0 && self.reduced(arc, from) == 0
    }

    /// BFS levels over admissible arcs; false when the sink is not reached.
    fn levels(&mut self) -> bool {
        self.level.fill(u32::MAX);
        self.queue.clear();
        let source = self.net.source as usize;
        self.level[source] = 0;
        self.queue.push(source as u32);
        let mut next = 0;
        while next < self.queue.len() {
            let v = self.queue[next] as usize;
            next += 1;
            for i in self.net.arcs_of(v) {
                let arc = self.net.adj[i] as usize;
                let w = self.net.head[arc] as usize;
                if self.level[w] == u32::MAX && self.admissible(arc, v) {
                    self.level[w] = self.level[v] + 1;
                    self.queue.push(w as u32);
                }
            }
        }
        self.level[self.net.sink as usize] != u32::MAX
    }

    /// One blocking flow on the level graph (iterative DFS with current-arc pointers).
    fn blocking_flow(&mut self) {
        for v in 0..self.cursor.len() {
            self.cursor[v] = self.net.first[v];
        }
        let (source, sink) = (self.net.source as usize, self.net.sink as usize);
        self.path.clear();
        loop {
            let v = match self.path.last() {
                Some(&arc) => self.net.head[arc as usize] as usize,
                None => source,
            };
            if v == sink {
                let push = self.path.iter().map(|&a| self.net.cap[a as usize]).min().unwrap_or(0);
                let mut cut = self.path.len();
                for (i, &arc) in self.path.iter().enumerate() {
                    let arc = arc as usize;
                    self.net.cap[arc] -= push;
                    self.net.cap[arc ^ 1] += push;
                    if self.net.cap[arc] == 0 && i < cut {
                        cut = i;
                    }
                }
                self.path.truncate(cut);
                continue;
            }
            let end = self.net.first[v + 1];
            let mut advanced = false;
            while self.cursor[v] < end {
                let arc = self.net.adj[self.cursor[v] as usize] as usize;
                let w = self.net.head[arc] as usize;
                if self.level[w] == self.level[v] + 1 && self.admissible(arc, v) {
                    self.path.push(arc as u32);
                    advanced = true;
                    break;
                }
                self.cursor[v] += 1;
            }
            if advanced {
                continue;
            }
            // Dead end: nothing more passes through v in this level graph.
            self.level[v] = u32::MAX;
            match self.path.pop() {
                Some(arc) => {
                    let from = self.net.head[(arc ^ 1) as usize] as usize;
                    self.cursor[from] += 1;
                }
                None => break,
            }
        }
    }
}

/// How much of each in-cycle obligation must stay uncleared, in `in_cycle` order; minimal in total.
pub(crate) fn min_uncleared(parties: usize, obligations: &[Obligation], in_cycle: &[usize]) -> Vec<u64> {
    let mut imbalance = vec![0_i128; parties];
    let mut arcs: Vec<(u32, u32, u128, i64)> = Vec::with_capacity(in_cycle.len() + parties);
    for &edge in in_cycle {
        let o = obligations[edge];
        imbalance[o.creditor as usize] += i128::from(o.amount);
        imbalance[o.debtor as usize] -= i128::from(o.amount);
        arcs.push((o.creditor, o.debtor, u128::from(o.amount), 1));
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
    let mut solver = Solver {
        net: Network::build(nodes, &arcs, source, sink),
        potential: vec![0; nodes],
        dist: vec![0; nodes],
        level: vec![0; nodes],
        cursor: vec![0; nodes],
        queue: Vec::with_capacity(nodes),
        heap: BinaryHeap::with_capacity(nodes),
        path: Vec::new(),
    };
    while solver.reprice() {
        while solver.levels() {
            solver.blocking_flow();
        }
    }
    // The flow on un-clear arc k is what its partner can now send back.
    (0..in_cycle.len())
        .map(|k| u64::try_from(solver.net.cap[2 * k + 1]).unwrap_or(u64::MAX))
        .collect()
}
