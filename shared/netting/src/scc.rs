//! Strongly connected components (Tarjan), iterative so deep graphs cannot overflow the stack.

use crate::Obligation;

const UNVISITED: u32 = u32::MAX;

/// Component id per party; two parties share an id exactly when each can reach the other.
pub(crate) fn components(parties: usize, edges: &[Obligation]) -> Vec<u32> {
    // CSR adjacency: the creditors of each debtor.
    let mut start = vec![0_u32; parties + 1];
    for e in edges.iter().filter(|e| e.amount > 0) {
        start[e.debtor as usize + 1] += 1;
    }
    for v in 0..parties {
        start[v + 1] += start[v];
    }
    let mut fill = start.clone();
    let mut next = vec![0_u32; start[parties] as usize];
    for e in edges.iter().filter(|e| e.amount > 0) {
        let slot = &mut fill[e.debtor as usize];
        next[*slot as usize] = e.creditor;
        *slot += 1;
    }

    let mut index = vec![UNVISITED; parties];
    let mut low = vec![0_u32; parties];
    let mut on_stack = vec![false; parties];
    let mut component = vec![UNVISITED; parties];
    let mut stack: Vec<u32> = Vec::new();
    // (node, position in its adjacency list)
    let mut call: Vec<(u32, u32)> = Vec::new();
    let mut counter = 0_u32;
    let mut components = 0_u32;

    for root in 0..parties as u32 {
        if index[root as usize] != UNVISITED {
            continue;
        }
        call.push((root, start[root as usize]));
        index[root as usize] = counter;
        low[root as usize] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let vi = v as usize;
            if *pos < start[vi + 1] {
                let w = next[*pos as usize];
                *pos += 1;
                let wi = w as usize;
                if index[wi] == UNVISITED {
                    index[wi] = counter;
                    low[wi] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    call.push((w, start[wi]));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(index[wi]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent as usize] = low[parent as usize].min(low[vi]);
            }
            if low[vi] == index[vi] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component[w as usize] = components;
                    if w == v {
                        break;
                    }
                }
                components += 1;
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(debtor: u32, creditor: u32) -> Obligation {
        Obligation {
            debtor,
            creditor,
            amount: 1,
        }
    }

    #[test]
    fn finds_cycles_and_separates_chains() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 2 -> 3 -> 4 is a tail.
        let c = components(
            5,
            &[edge(0, 1), edge(1, 2), edge(2, 0), edge(2, 3), edge(3, 4)],
        );
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_ne!(c[2], c[3]);
        assert_ne!(c[3], c[4]);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 200_000_u32;
        let mut edges: Vec<_> = (0..n - 1).map(|i| edge(i, i + 1)).collect();
        edges.push(edge(n - 1, 0));
        let c = components(n as usize, &edges);
        assert!(c.iter().all(|&x| x == c[0]));
    }
}
