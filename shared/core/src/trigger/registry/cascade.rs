//! Ordering rebuilds along task-to-task edges (task X pushes the image
//! task Y is built on): [`cascade_edges`] finds the edges, and
//! [`schedule_cascade`] tells which pending rebuilds may start now, so a
//! chain runs in order and a diamond's bottom runs once, after both sides.
//! Pure graph code (strongly connected components for cycles).
//!
//! The handlers do not call these today: [`super::handler::process_update`]
//! holds a task back while a task that pushes one of its bases has a run
//! under way, and [`super::handler::after_run`] feeds a finished run's
//! pushes back in, which gives the same order from the store.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::model::BaseImageTriggerType;
use crate::trigger::registry::decide::{tagged, Dependent};

/// Task-to-task edges `(upstream, downstream)`: the upstream task pushes an
/// image (`outputs`: task, normalised tagged output reference) that the
/// downstream task uses as a base in a way its trigger reacts to (enabled,
/// and runtime base or type `All`). Self edges are kept out. Sorted, unique.
pub fn cascade_edges(
    outputs: &[(String, String)],
    dependents: &[Dependent],
) -> Vec<(String, String)> {
    let mut by_image: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for d in dependents {
        let reacts =
            d.trigger_enabled && (d.runtime || d.trigger_type == BaseImageTriggerType::All);
        if reacts {
            by_image
                .entry(tagged(&d.image))
                .or_default()
                .insert(&d.task);
        }
    }
    let mut edges = BTreeSet::new();
    for (task, image) in outputs {
        if let Some(downs) = by_image.get(&tagged(image)) {
            for down in downs {
                if *down != task {
                    edges.insert((task.clone(), (*down).to_string()));
                }
            }
        }
    }
    edges.into_iter().collect()
}

/// Which pending rebuilds may start now and which wait for an upstream one.
///
/// `pending` holds the tasks whose rebuild in this cascade is triggered but
/// not finished (waiting, queued or running); `edges` are `(upstream,
/// downstream)` task pairs (see [`cascade_edges`]). A pending task waits
/// while another pending task reaches it along the edges (directly or
/// through tasks that are not pending, since their rebuild will follow): in a
/// chain A -> B -> C only A is ready; in a diamond D waits for both B and C.
/// Self edges are ignored, so a task whose output is its own base is never
/// held back by itself. Tasks on a cycle cannot all wait for each other:
/// among pending tasks of one cycle the first by name is ready and the others
/// wait for it (use [`super::decide::decide_cascade`] to stop the cycle from rebuilding
/// again). When a rebuild finishes or fails, remove it from `pending` and call
/// again. Both lists are in name order; tasks not in `pending` never appear.
pub fn schedule_cascade(
    pending: &BTreeSet<String>,
    edges: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    // Index every node.
    let mut names: Vec<&str> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for n in pending
        .iter()
        .map(String::as_str)
        .chain(edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]))
    {
        if !index.contains_key(n) {
            index.insert(n, names.len());
            names.push(n);
        }
    }
    let n = names.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (a, b) in edges {
        if a == b {
            continue;
        }
        if let (Some(&ia), Some(&ib)) = (index.get(a.as_str()), index.get(b.as_str())) {
            if let (Some(s), Some(p)) = (succ.get_mut(ia), pred.get_mut(ib)) {
                s.push(ib);
                p.push(ia);
            }
        }
    }
    let comp = strongly_connected(&succ, &pred);
    // comp[v] numbers components in topological order of the condensation
    // (sources first), so one pass in that order propagates "a pending task
    // is strictly upstream".
    let comps = comp.iter().copied().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); comps];
    for (v, &c) in comp.iter().enumerate() {
        if let Some(m) = members.get_mut(c) {
            m.push(v);
        }
    }
    let is_pending: Vec<bool> = names.iter().map(|nm| pending.contains(*nm)).collect();
    // upstream[c]: some pending task in a component strictly upstream of c.
    let mut upstream = vec![false; comps];
    // has_pending[c]: component c holds a pending task.
    let has_pending: Vec<bool> = members
        .iter()
        .map(|m| {
            m.iter()
                .any(|&v| is_pending.get(v).copied().unwrap_or(false))
        })
        .collect();
    for c in 0..comps {
        let flag = upstream.get(c).copied().unwrap_or(false)
            || has_pending.get(c).copied().unwrap_or(false);
        if !flag {
            continue;
        }
        for &v in members.get(c).map(Vec::as_slice).unwrap_or_default() {
            for &w in succ.get(v).map(Vec::as_slice).unwrap_or_default() {
                if let Some(&cw) = comp.get(w) {
                    if cw != c {
                        if let Some(u) = upstream.get_mut(cw) {
                            *u = true;
                        }
                    }
                }
            }
        }
    }
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for task in pending {
        let Some(&v) = index.get(task.as_str()) else {
            continue;
        };
        let c = comp.get(v).copied().unwrap_or(0);
        let held_by_upstream = upstream.get(c).copied().unwrap_or(false);
        // On a cycle: the first pending member by name goes first.
        let first_in_cycle = members
            .get(c)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|&&w| is_pending.get(w).copied().unwrap_or(false))
            .filter_map(|&w| names.get(w).copied())
            .min();
        let held_in_cycle = first_in_cycle.is_some_and(|f| f != task.as_str());
        if held_by_upstream || held_in_cycle {
            waiting.push(task.clone());
        } else {
            ready.push(task.clone());
        }
    }
    (ready, waiting)
}

/// Strongly connected components (Kosaraju, iterative). Returns each node's
/// component number; components are numbered in topological order of the
/// condensation (a component's upstream components have smaller numbers).
fn strongly_connected(succ: &[Vec<usize>], pred: &[Vec<usize>]) -> Vec<usize> {
    let n = succ.len();
    // Pass 1: finish order on the graph.
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if visited.get(start).copied().unwrap_or(true) {
            continue;
        }
        if let Some(v) = visited.get_mut(start) {
            *v = true;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, next) = *top;
            let edges = succ.get(v).map(Vec::as_slice).unwrap_or_default();
            if let Some(&w) = edges.get(next) {
                top.1 += 1;
                if let Some(seen) = visited.get_mut(w) {
                    if !*seen {
                        *seen = true;
                        stack.push((w, 0));
                    }
                }
            } else {
                order.push(v);
                stack.pop();
            }
        }
    }
    // Pass 2: on the reversed graph in reverse finish order; each tree is a
    // component, found sources-first.
    let mut comp = vec![usize::MAX; n];
    let mut next_comp = 0;
    for &start in order.iter().rev() {
        if comp.get(start).copied() != Some(usize::MAX) {
            continue;
        }
        let mut stack = vec![start];
        if let Some(c) = comp.get_mut(start) {
            *c = next_comp;
        }
        while let Some(v) = stack.pop() {
            for &w in pred.get(v).map(Vec::as_slice).unwrap_or_default() {
                if let Some(c) = comp.get_mut(w) {
                    if *c == usize::MAX {
                        *c = next_comp;
                        stack.push(w);
                    }
                }
            }
        }
        next_comp += 1;
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::registry::test_support::{dep, D1};

    /// (name, pending, edges, ready, waiting)
    type CascadeCase<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<(String, String)>,
        Vec<&'a str>,
        Vec<&'a str>,
    );

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn edges(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn schedule_cascade_table() {
        let chain = edges(&[("a", "b"), ("b", "c")]);
        let diamond = edges(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
        let cases: Vec<CascadeCase> = vec![
            (
                "chain: a first",
                vec!["a", "b", "c"],
                chain.clone(),
                vec!["a"],
                vec!["b", "c"],
            ),
            (
                "chain: after a",
                vec!["b", "c"],
                chain.clone(),
                vec!["b"],
                vec!["c"],
            ),
            (
                "chain: through a non-pending task",
                vec!["a", "c"],
                chain.clone(),
                vec!["a"],
                vec!["c"],
            ),
            ("chain: last", vec!["c"], chain.clone(), vec!["c"], vec![]),
            (
                "diamond: b and c first",
                vec!["b", "c", "d"],
                diamond.clone(),
                vec!["b", "c"],
                vec!["d"],
            ),
            (
                "diamond: d waits for c",
                vec!["c", "d"],
                diamond.clone(),
                vec!["c"],
                vec!["d"],
            ),
            (
                "diamond: d after both",
                vec!["d"],
                diamond.clone(),
                vec!["d"],
                vec![],
            ),
            (
                "diamond: from the top",
                vec!["a", "b", "c", "d"],
                diamond.clone(),
                vec!["a"],
                vec!["b", "c", "d"],
            ),
            (
                "self loop",
                vec!["s"],
                edges(&[("s", "s")]),
                vec!["s"],
                vec![],
            ),
            (
                "self loop in a chain",
                vec!["s", "t"],
                edges(&[("s", "s"), ("s", "t")]),
                vec!["s"],
                vec!["t"],
            ),
            ("no edges", vec!["x", "y"], vec![], vec!["x", "y"], vec![]),
            (
                "downstream only is not held",
                vec!["b"],
                edges(&[("b", "c")]),
                vec!["b"],
                vec![],
            ),
            (
                "cycle: first by name goes",
                vec!["p", "q"],
                edges(&[("p", "q"), ("q", "p")]),
                vec!["p"],
                vec!["q"],
            ),
            (
                "cycle fed from upstream",
                vec!["a", "p", "q"],
                edges(&[("a", "p"), ("p", "q"), ("q", "p")]),
                vec!["a"],
                vec!["p", "q"],
            ),
            (
                "below a cycle",
                vec!["q", "z"],
                edges(&[("p", "q"), ("q", "p"), ("q", "z")]),
                vec!["q"],
                vec!["z"],
            ),
            ("empty", vec![], chain.clone(), vec![], vec![]),
        ];
        for (name, pending, e, ready, waiting) in cases {
            let (r, w) = schedule_cascade(&set(&pending), &e);
            assert_eq!(r, ready, "{name}: ready");
            assert_eq!(w, waiting, "{name}: waiting");
        }
    }

    #[test]
    fn schedule_cascade_long_chain_is_linear_and_iterative() {
        // 20,000 tasks in one chain: no recursion, no quadratic blow-up.
        let n = 20_000;
        let names: Vec<String> = (0..n).map(|i| format!("t{i:05}")).collect();
        let e: Vec<(String, String)> = names
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect();
        let pending: BTreeSet<String> = names.iter().cloned().collect();
        let (r, w) = schedule_cascade(&pending, &e);
        assert_eq!(r, vec!["t00000".to_string()]);
        assert_eq!(w.len(), n - 1);
    }

    #[test]
    fn cascade_edges_from_outputs() {
        use BaseImageTriggerType::{All, Runtime};
        let deps = vec![
            dep("b", "r.io/a:latest", Some(D1), true, true, Runtime),
            dep("c", "r.io/a:latest", Some(D1), false, true, All),
            dep("x", "r.io/a:latest", Some(D1), false, true, Runtime),
            dep("y", "r.io/a:latest", Some(D1), true, false, All),
            dep("a", "r.io/a:latest", Some(D1), true, true, Runtime),
            dep("d", "r.io/b:1", Some(D1), true, true, Runtime),
        ];
        let outputs = vec![
            ("a".to_string(), "r.io/a".to_string()),
            ("b".to_string(), "r.io/b:1".to_string()),
        ];
        assert_eq!(
            cascade_edges(&outputs, &deps),
            edges(&[("a", "b"), ("a", "c"), ("b", "d")])
        );
    }
}
