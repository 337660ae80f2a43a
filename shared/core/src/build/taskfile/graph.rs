//! The step graph of a task file (`when`).

use super::TaskFile;
use std::time::Duration;

/// One step in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    pub id: String,
    /// Position in the file.
    pub index: usize,
    /// Steps (indexes) that must succeed before this one starts.
    pub depends_on: Vec<usize>,
    /// Steps (indexes) that wait for this one.
    pub dependents: Vec<usize>,
    /// 0 for steps that start at once, else 1 + the highest level waited for.
    pub level: usize,
}

/// The dependencies of every step, in file order. Acyclic by construction:
/// a step can only wait for steps before it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
}

/// Builds the graph of a validated task file. Dependencies on a step that is
/// not earlier in the file (impossible after [`super::parse`]) are dropped,
/// so the graph is always acyclic.
pub fn plan(tf: &TaskFile) -> Graph {
    let mut nodes: Vec<GraphNode> = Vec::with_capacity(tf.steps.len());
    for (i, step) in tf.steps.iter().enumerate() {
        let mut deps: Vec<usize> = step.depends_on.iter().copied().filter(|d| *d < i).collect();
        deps.sort_unstable();
        deps.dedup();
        let level = deps
            .iter()
            .filter_map(|d| nodes.get(*d))
            .map(|n| n.level + 1)
            .max()
            .unwrap_or(0);
        for d in &deps {
            if let Some(n) = nodes.get_mut(*d) {
                n.dependents.push(i);
            }
        }
        nodes.push(GraphNode {
            id: step.id.clone(),
            index: i,
            depends_on: deps,
            dependents: Vec::new(),
            level,
        });
    }
    Graph { nodes }
}

impl Graph {
    /// Step ids grouped by level, file order inside a level: the order in
    /// which an unlimited executor with equal step times would start them.
    pub fn levels(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for n in &self.nodes {
            while out.len() <= n.level {
                out.push(Vec::new());
            }
            if let Some(level) = out.get_mut(n.level) {
                level.push(n.id.clone());
            }
        }
        out
    }

    /// The ids a step waits for.
    pub fn dependencies_of(&self, id: &str) -> Option<Vec<&str>> {
        let n = self.nodes.iter().find(|n| n.id == id)?;
        Some(
            n.depends_on
                .iter()
                .filter_map(|d| self.nodes.get(*d))
                .map(|d| d.id.as_str())
                .collect(),
        )
    }

    /// The length of the longest chain of step durations (`durations[i]`
    /// for step `i`; missing ones count as zero): the least wall time any
    /// executor needs.
    pub fn critical_path(&self, durations: &[Duration]) -> Duration {
        let mut finish: Vec<Duration> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let start = n
                .depends_on
                .iter()
                .filter_map(|d| finish.get(*d))
                .max()
                .copied()
                .unwrap_or_default();
            let own = durations.get(n.index).copied().unwrap_or_default();
            finish.push(start.saturating_add(own));
        }
        finish.into_iter().max().unwrap_or_default()
    }
}
