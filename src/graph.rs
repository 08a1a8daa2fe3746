//! The DAG of nodes (petgraph): cycle detection with the cycle's names, a
//! topological order, target selection, and text/dot/mermaid renderings.

use std::fmt::Write;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::error::Result;
use crate::spec::Pipeline;

/// Nodes are the pipeline's node indexes; an edge runs from producer to consumer.
pub struct Dag {
    pub graph: DiGraph<usize, ()>,
    /// Node indexes in an order where every producer precedes its consumers.
    pub order: Vec<usize>,
}

impl Dag {
    pub fn build(p: &Pipeline) -> Result<Dag> {
        let mut graph = DiGraph::with_capacity(p.nodes.len(), p.nodes.len());
        for i in 0..p.nodes.len() {
            graph.add_node(i);
        }
        for (i, n) in p.nodes.iter().enumerate() {
            for &u in &n.upstream {
                graph.add_edge(NodeIndex::new(u), NodeIndex::new(i), ());
            }
        }
        // Kahn's algorithm, always taking the earliest-declared ready node: a stable order
        // that reads like the pipeline file.
        let mut waiting: Vec<usize> = p.nodes.iter().map(|n| n.upstream.len()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..p.nodes.len())
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(p.nodes.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for d in graph.neighbors(NodeIndex::new(i)) {
                waiting[d.index()] -= 1;
                if waiting[d.index()] == 0 {
                    ready.push(Reverse(d.index()));
                }
            }
        }
        if order.len() < p.nodes.len() {
            // Name every node of a strongly connected component that holds a cycle.
            let scc = kosaraju_scc(&graph)
                .into_iter()
                .find(|c| c.len() > 1 || c.iter().any(|&ix| graph.contains_edge(ix, ix)))
                .unwrap_or_default();
            let mut members: Vec<usize> = scc.iter().map(|ix| ix.index()).collect();
            members.sort_unstable();
            let cycle = cycle_through(p, &members);
            let names: Vec<&str> = cycle.iter().map(|&i| p.nodes[i].name.as_str()).collect();
            let first = &p.nodes[cycle[0]];
            // Point at the `deps:` entry of the first node that names the next one.
            let at = first
                .upstream
                .iter()
                .position(|&u| u == cycle[1])
                .and_then(|k| first.upstream_at.get(k).copied())
                .unwrap_or(first.line_col);
            return Err(p.source.error(
                at,
                format!("dependency cycle (each needs the next): {}", names.join(" → ")),
                Some("a stage cannot (indirectly) depend on its own outputs: remove one of these deps".into()),
            ));
        }
        Ok(Dag { graph, order })
    }

    /// The targets and everything they depend on (all nodes when `targets` is empty).
    pub fn closure(&self, targets: &[usize]) -> Vec<bool> {
        let n = self.graph.node_count();
        if targets.is_empty() {
            return vec![true; n];
        }
        let mut keep = vec![false; n];
        let rev = Reversed(&self.graph);
        for &t in targets {
            let mut dfs = Dfs::new(rev, NodeIndex::new(t));
            while let Some(ix) = dfs.next(rev) {
                keep[ix.index()] = true;
            }
        }
        keep
    }

    /// The roots and everything that depends on them, directly or not.
    pub fn downstream_closure(&self, roots: &[usize]) -> Vec<bool> {
        let mut keep = vec![false; self.graph.node_count()];
        for &r in roots {
            let mut dfs = Dfs::new(&self.graph, NodeIndex::new(r));
            while let Some(ix) = dfs.next(&self.graph) {
                keep[ix.index()] = true;
            }
        }
        keep
    }

    pub fn downstream(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.neighbors(NodeIndex::new(i)).map(|ix| ix.index())
    }
}

/// A closed path of "depends on" edges within a cycle's members, from the first member back
/// to it: `[a, b, a]`.
fn cycle_through(p: &Pipeline, members: &[usize]) -> Vec<usize> {
    let Some(&start) = members.first() else {
        return vec![0, 0];
    };
    // Breadth-first over upstream edges inside the component, until one leads back to start.
    let mut parent: std::collections::HashMap<usize, usize> = Default::default();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &u in &p.nodes[i].upstream {
            if u == start {
                let mut path = vec![start];
                let mut at = i;
                while at != start {
                    path.push(at);
                    at = parent[&at];
                }
                path[1..].reverse();
                path.push(start);
                return path;
            }
            if members.binary_search(&u).is_ok() && !parent.contains_key(&u) {
                parent.insert(u, i);
                queue.push_back(u);
            }
        }
    }
    vec![start, start]
}

/// Resolve CLI targets: node names, or stage names (all their nodes), or `stage[k=v]` filters.
pub fn resolve_targets(
    p: &Pipeline,
    targets: &[String],
) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for t in targets {
        if let Some(i) = p.node_index(t) {
            out.push(i);
            continue;
        }
        let (stage, filter) = match t.split_once('[') {
            Some((s, rest)) => (s, rest.strip_suffix(']').unwrap_or(rest)),
            None => (t.as_str(), ""),
        };
        let Some(members) = p.stages.get(stage) else {
            let stages: Vec<&str> = p.stages.keys().map(|s| s.as_str()).collect();
            return Err(format!(
                "no stage or node named `{t}` (stages: {})",
                stages.join(", ")
            ));
        };
        let pairs = if filter.is_empty() {
            Vec::new()
        } else {
            crate::spec::interp::parse_filter(filter)?
        };
        let before = out.len();
        out.extend(members.iter().copied().filter(|&i| {
            pairs.iter().all(|(k, v)| {
                p.nodes[i]
                    .matrix
                    .iter()
                    .any(|(mk, mv)| mk == k && &crate::spec::interp::matrix_label(mv) == v)
            })
        }));
        if out.len() == before {
            return Err(format!("no node of `{stage}` matches `{t}`"));
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DagFormat {
    Text,
    Dot,
    Mermaid,
}

pub fn render(p: &Pipeline, dag: &Dag, format: DagFormat) -> String {
    let mut s = String::new();
    match format {
        DagFormat::Text => {
            for &i in &dag.order {
                let n = &p.nodes[i];
                let ups: Vec<&str> = n
                    .upstream
                    .iter()
                    .map(|&u| p.nodes[u].name.as_str())
                    .collect();
                if ups.is_empty() {
                    let _ = writeln!(s, "{}", n.name);
                } else {
                    let _ = writeln!(s, "{} ← {}", n.name, ups.join(", "));
                }
            }
        }
        DagFormat::Dot => {
            let _ = writeln!(
                s,
                "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];",
                p.name
            );
            for n in &p.nodes {
                let _ = writeln!(s, "  \"{}\";", n.name.replace('"', "\\\""));
            }
            for e in dag.graph.edge_indices() {
                let (a, b) = dag.graph.edge_endpoints(e).unwrap();
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"{}\";",
                    p.nodes[a.index()].name.replace('"', "\\\""),
                    p.nodes[b.index()].name.replace('"', "\\\"")
                );
            }
            s.push_str("}\n");
        }
        DagFormat::Mermaid => {
            s.push_str("flowchart LR\n");
            for (i, n) in p.nodes.iter().enumerate() {
                let _ = writeln!(s, "  n{i}[\"{}\"]", n.name.replace('"', "#quot;"));
            }
            for e in dag.graph.edge_indices() {
                let (a, b) = dag.graph.edge_endpoints(e).unwrap();
                let _ = writeln!(s, "  n{} --> n{}", a.index(), b.index());
            }
        }
    }
    s
}
