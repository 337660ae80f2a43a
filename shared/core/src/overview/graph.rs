//! The image dependency graph: base images -> the tasks built on them ->
//! the images those tasks push -> the tasks built on those, and so on.
//!
//! An edge from an image to a task *triggers* when a move of that image
//! starts a run of the task (the same rule as
//! [`crate::trigger::registry::decide`]: the task's base-image trigger is
//! on, and the image is its runtime base or its trigger type is `All`).
//! A task's pushes always reach the images it pushes. So what rebuilds when
//! an image moves is every task reachable from it over triggering edges.

use crate::domain::imageref::ImageRef;
use crate::domain::model::{BaseDependency, BaseImageTriggerType, Run, Task};
use crate::ports::Store;
use crate::Result;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Image,
    Task,
}

/// An image or a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `image:<ref>` or `task:<name>`.
    pub id: String,
    pub kind: NodeKind,
    /// The image reference or the task name.
    pub label: String,
    /// Column for drawing: 0 for images nothing here builds, else one more
    /// than the deepest node with an edge into it.
    pub level: usize,
    /// For images: the tasks that rebuild when it moves (directly or
    /// through the images they push), by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rebuilds: Vec<String>,
}

/// `base`: a task builds on an image; `push`: a task pushed an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Base,
    Push,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// For `base` edges: the image is the task's runtime base.
    pub runtime: bool,
    /// A move of `from` starts a run of `to` (always true for `push`).
    pub triggers: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// What the graph is built from, per task.
#[derive(Debug, Clone)]
pub struct TaskInputs {
    pub task: Task,
    /// The base images the dependency index holds for it.
    pub bases: Vec<BaseDependency>,
    /// The images its newest successful run pushed (`registry/repo:tag`).
    pub pushed: Vec<String>,
}

fn image_id(r: &str) -> String {
    format!("image:{r}")
}

fn task_id(name: &str) -> String {
    format!("task:{name}")
}

/// The tagged form the dependency index uses, or the text as given.
fn normalise(image: &str) -> String {
    ImageRef::parse(image)
        .map(|r| r.tagged())
        .unwrap_or_else(|_| image.to_string())
}

/// Whether a move of a base image starts a run of `task`.
pub fn base_triggers(task: &Task, dep: &BaseDependency) -> bool {
    task.base_image_trigger_enabled
        && (dep.runtime || task.base_image_trigger_type == BaseImageTriggerType::All)
}

/// Builds the graph (nodes sorted by level, then label).
pub fn build(inputs: &[TaskInputs]) -> Graph {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut edges: Vec<Edge> = Vec::new();
    let mut add = |id: String, kind: NodeKind, label: &str| {
        nodes.entry(id.clone()).or_insert(Node {
            id,
            kind,
            label: label.to_string(),
            level: 0,
            rebuilds: Vec::new(),
        });
    };
    for i in inputs {
        let t = task_id(&i.task.name);
        add(t.clone(), NodeKind::Task, &i.task.name);
        for dep in &i.bases {
            let image = normalise(&dep.image);
            add(image_id(&image), NodeKind::Image, &image);
            edges.push(Edge {
                from: image_id(&image),
                to: t.clone(),
                kind: EdgeKind::Base,
                runtime: dep.runtime,
                triggers: base_triggers(&i.task, dep),
            });
        }
        for out in &i.pushed {
            let image = normalise(out);
            add(image_id(&image), NodeKind::Image, &image);
            edges.push(Edge {
                from: t.clone(),
                to: image_id(&image),
                kind: EdgeKind::Push,
                runtime: false,
                triggers: true,
            });
        }
    }
    edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    edges.dedup_by(|a, b| a.from == b.from && a.to == b.to);
    assign_levels(&mut nodes, &edges);
    let rebuilds: Vec<(String, Vec<String>)> = nodes
        .values()
        .filter(|n| n.kind == NodeKind::Image)
        .map(|n| (n.id.clone(), rebuilt_by(&n.id, &edges)))
        .collect();
    for (id, r) in rebuilds {
        if let Some(n) = nodes.get_mut(&id) {
            n.rebuilds = r;
        }
    }
    let mut nodes: Vec<Node> = nodes.into_values().collect();
    nodes.sort_by(|a, b| (a.level, &a.label).cmp(&(b.level, &b.label)));
    Graph { nodes, edges }
}

/// Longest-path levels; a cycle (a task pushing an image it builds on)
/// stops growing after one round per node, so this always ends.
fn assign_levels(nodes: &mut BTreeMap<String, Node>, edges: &[Edge]) {
    for _ in 0..nodes.len() {
        let mut changed = false;
        for e in edges {
            let from = nodes.get(&e.from).map(|n| n.level).unwrap_or(0);
            if let Some(to) = nodes.get_mut(&e.to) {
                if to.level < from + 1 && from < nodes_cap() {
                    to.level = from + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// No drawing needs more columns than this.
fn nodes_cap() -> usize {
    64
}

/// The tasks reachable from `start` over triggering edges, by name.
pub fn rebuilt_by(start: &str, edges: &[Edge]) -> Vec<String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = VecDeque::from([start]);
    let mut tasks = BTreeSet::new();
    while let Some(id) = queue.pop_front() {
        for e in edges.iter().filter(|e| e.from == id && e.triggers) {
            if seen.insert(e.to.as_str()) {
                if let Some(name) = e.to.strip_prefix("task:") {
                    tasks.insert(name.to_string());
                }
                queue.push_back(e.to.as_str());
            }
        }
    }
    tasks.into_iter().collect()
}

/// The images a run pushed, as references.
fn pushed(run: &Run) -> Vec<String> {
    run.output_images
        .iter()
        .map(|o| format!("{}/{}:{}", o.registry, o.repository, o.tag))
        .collect()
}

/// Reads every task, its base images and its newest successful run's
/// pushes from the store, and builds the graph.
pub async fn load(store: &dyn Store) -> Result<Graph> {
    let tasks = store.list_tasks().await?;
    let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    let last: BTreeMap<String, Run> = store
        .last_succeeded_runs(&names)
        .await?
        .into_iter()
        .filter_map(|r| r.task.clone().map(|t| (t, r)))
        .collect();
    let mut inputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        let bases = store.dependencies_of(&task.name).await?;
        let pushed = last.get(&task.name).map(pushed).unwrap_or_default();
        inputs.push(TaskInputs {
            task,
            bases,
            pushed,
        });
    }
    Ok(build(&inputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::task_with_timers;

    fn task(name: &str) -> Task {
        let mut t = task_with_timers(&[]);
        t.name = name.into();
        t
    }

    fn dep(image: &str, runtime: bool) -> BaseDependency {
        BaseDependency {
            image: image.into(),
            digest: None,
            runtime,
        }
    }

    fn inputs() -> Vec<TaskInputs> {
        let mut off = task("off");
        off.base_image_trigger_enabled = false;
        let mut all = task("all");
        all.base_image_trigger_type = BaseImageTriggerType::All;
        vec![
            TaskInputs {
                task: task("base"),
                bases: vec![dep("reg:5000/os:1", true)],
                pushed: vec!["reg:5000/base:1".into()],
            },
            TaskInputs {
                task: task("web"),
                bases: vec![dep("reg:5000/base:1", true), dep("reg:5000/sdk:1", false)],
                pushed: vec!["reg:5000/web:1".into()],
            },
            TaskInputs {
                task: all,
                bases: vec![dep("reg:5000/sdk:1", false)],
                pushed: vec![],
            },
            TaskInputs {
                task: off,
                bases: vec![dep("reg:5000/os:1", true)],
                pushed: vec![],
            },
        ]
    }

    fn node<'a>(g: &'a Graph, id: &str) -> &'a Node {
        g.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in {g:?}"))
    }

    #[test]
    fn a_move_rebuilds_every_task_downstream_over_triggering_edges() {
        let g = build(&inputs());
        // os -> base -> base:1 -> web; `off` has its trigger switched off.
        assert_eq!(node(&g, "image:reg:5000/os:1").rebuilds, ["base", "web"]);
        assert_eq!(node(&g, "image:reg:5000/base:1").rebuilds, ["web"]);
        // A build-time base triggers only tasks whose type is All.
        assert_eq!(node(&g, "image:reg:5000/sdk:1").rebuilds, ["all"]);
        assert!(node(&g, "image:reg:5000/web:1").rebuilds.is_empty());
        let off = g
            .edges
            .iter()
            .find(|e| e.to == "task:off")
            .expect("edge to off");
        assert!(!off.triggers);
    }

    #[test]
    fn levels_follow_the_chain() {
        let g = build(&inputs());
        assert_eq!(node(&g, "image:reg:5000/os:1").level, 0);
        assert_eq!(node(&g, "task:base").level, 1);
        assert_eq!(node(&g, "image:reg:5000/base:1").level, 2);
        assert_eq!(node(&g, "task:web").level, 3);
        assert_eq!(node(&g, "image:reg:5000/web:1").level, 4);
        let levels: Vec<usize> = g.nodes.iter().map(|n| n.level).collect();
        let mut sorted = levels.clone();
        sorted.sort_unstable();
        assert_eq!(levels, sorted, "nodes come in level order");
    }

    #[test]
    fn a_task_that_pushes_its_own_base_ends() {
        let g = build(&[TaskInputs {
            task: task("loop"),
            bases: vec![dep("reg:5000/x:1", true)],
            pushed: vec!["reg:5000/x:1".into()],
        }]);
        assert_eq!(node(&g, "image:reg:5000/x:1").rebuilds, ["loop"]);
        assert!(g.nodes.iter().all(|n| n.level <= nodes_cap()));
    }

    #[test]
    fn references_are_normalised_like_the_dependency_index() {
        let g = build(&[TaskInputs {
            task: task("a"),
            bases: vec![dep("reg:5000/x", true)],
            pushed: vec![],
        }]);
        assert_eq!(
            node(&g, "image:reg:5000/x:latest").label,
            "reg:5000/x:latest"
        );
    }
}
