//! Interpolation of `${...}` while resolving: looking expressions up in a node's scope,
//! and splicing them into strings, values and (quoted) commands.

use serde_json::Value;

use super::interp::{Piece, Segment, parse_expr, parse_template, render, split_raw, words};
use super::model::At;
use super::{Looked, Resolver, Scope, shell};
use crate::error::Result;

impl Resolver<'_> {
    /// A command line with every value spliced in as data (see [`shell`]); `${raw:...}`
    /// splices shell text as it is. Also returns the nodes its `${stages...}` read.
    pub(super) fn interpolate_cmd(
        &self,
        tpl: &At<String>,
        scope: &Scope,
    ) -> Result<(String, Vec<usize>)> {
        let at = tpl.line_col();
        let pieces = parse_template(tpl.value()).or_else(|e| self.err(at, e, None))?;
        let mut out = String::new();
        let mut extra = Vec::new();
        let mut sh = shell::Scanner::new();
        for p in pieces {
            match p {
                Piece::Text(t) => {
                    sh.feed(&t);
                    out.push_str(&t);
                }
                Piece::Expr(e) if e.trim() == "params_file" => {
                    let text = self.params_file_ref(scope, at)?;
                    sh.feed(&text);
                    out.push_str(&text);
                }
                Piece::Expr(e) => {
                    let (raw, expr) = split_raw(&e);
                    let parts = match self.lookup(expr, scope, at)? {
                        Looked::Value(v) if raw => vec![render(&v)],
                        Looked::Value(v) => words(&v),
                        Looked::Paths(ps) => ps,
                        Looked::StageOuts(idx, ps) => {
                            extra.extend(idx);
                            ps
                        }
                    };
                    let text = if raw {
                        let text = parts.join(" ");
                        sh.feed(&text);
                        text
                    } else {
                        sh.splice(&parts).or_else(|r| {
                            self.err(at, format!("`${{{e}}}` in `cmd`: {}", r.why), Some(&r.help))
                        })?
                    };
                    out.push_str(&text);
                }
            }
        }
        Ok((out, extra))
    }

    pub(super) fn interpolate_str(&self, s: &At<String>, scope: &Scope) -> Result<String> {
        match self.interpolate_value(&Value::String(s.value().clone()), scope, s.line_col())? {
            Value::String(s) => Ok(s),
            other => Ok(render(&other)),
        }
    }

    /// Interpolate strings inside a value. A string that is exactly one `${expr}` takes the
    /// expression's type (so `lr: ${vars.lr}` stays a number).
    pub(super) fn interpolate_value(
        &self,
        v: &Value,
        scope: &Scope,
        at: (u64, u64),
    ) -> Result<Value> {
        match v {
            Value::String(s) => {
                let pieces = parse_template(s).or_else(|e| self.err(at, e, None))?;
                let as_value = |l: Looked| match l {
                    Looked::Value(v) => v,
                    Looked::Paths(p) | Looked::StageOuts(_, p) => {
                        Value::Array(p.into_iter().map(Value::String).collect())
                    }
                };
                if let [Piece::Expr(e)] = pieces.as_slice() {
                    // Outside `cmd` nothing is quoted, so `raw:` changes nothing.
                    return Ok(as_value(self.lookup(split_raw(e).1, scope, at)?));
                }
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(&t),
                        Piece::Expr(e) => out.push_str(&render(&as_value(self.lookup(
                            split_raw(&e).1,
                            scope,
                            at,
                        )?))),
                    }
                }
                Ok(Value::String(out))
            }
            Value::Array(items) => items
                .iter()
                .map(|x| self.interpolate_value(x, scope, at))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, x) in map {
                    out.insert(k.clone(), self.interpolate_value(x, scope, at)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    pub(super) fn lookup(&self, expr: &str, scope: &Scope, at: (u64, u64)) -> Result<Looked> {
        let segs = parse_expr(expr).or_else(|e| self.err(at, e, None))?;
        let fail = |msg: String, help: &str| -> Result<Looked> { self.err(at, msg, Some(help)) };
        let Some(Segment::Name(head)) = segs.first() else {
            return fail(
                format!("`${{{expr}}}` must start with a name"),
                "e.g. ${vars.lr}",
            );
        };
        let rest = &segs[1..];
        let value_at = |v: &Value, rest: &[Segment]| -> Result<Looked> {
            match walk_value(v, rest) {
                Some(v) => Ok(Looked::Value(v.clone())),
                None => fail(
                    format!("`${{{expr}}}` does not exist"),
                    "check the field names and indexes",
                ),
            }
        };
        match head.as_str() {
            "vars" | "matrix" | "params" => {
                let Some((name, rest)) = field(rest) else {
                    return fail(
                        format!("`${{{expr}}}` needs a name after `{head}.`"),
                        "e.g. ${vars.lr}",
                    );
                };
                let found = match head.as_str() {
                    "vars" => scope.vars.get(&name),
                    "matrix" => scope
                        .matrix
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v),
                    _ => match scope.params {
                        Some(p) => p
                            .get(&name)
                            .or_else(|| scope.file_params.and_then(|t| t.get(&name))),
                        // Inline params may read params-file values (a kind's `lr: ${params.train.lr}`).
                        None if scope.file_params.is_some() => {
                            scope.file_params.and_then(|t| t.get(&name))
                        }
                        None => {
                            return fail(
                                format!("`${{{expr}}}`: params are not available here"),
                                "params can be used in cmd, outs, deps, env and out_dir",
                            );
                        }
                    },
                };
                match found {
                    Some(v) => value_at(v, rest),
                    None => fail(
                        format!(
                            "unknown {} `{name}` in `${{{expr}}}`",
                            match head.as_str() {
                                "vars" => "var",
                                "params" => "param",
                                _ => "matrix key",
                            }
                        ),
                        &known_names(head, scope),
                    ),
                }
            }
            "stages" => {
                let Some(ns) = &scope.node else {
                    return fail(
                        format!("`${{{expr}}}` can only be used in `cmd`"),
                        "kinds receive their upstream outputs directly; list the stage in `deps`",
                    );
                };
                let Some((stage, rest)) = field(rest) else {
                    return fail(
                        format!("`${{{expr}}}` needs a stage name"),
                        "e.g. ${stages.prepare.outs}",
                    );
                };
                let Some(members) = ns.stages.get(&stage) else {
                    return fail(
                        format!("unknown stage `{stage}` in `${{{expr}}}`"),
                        &format!(
                            "stages: {}",
                            ns.stages.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                };
                let (selected, rest) = match rest.first() {
                    Some(Segment::Filter(pairs)) => (
                        self.select(&stage, members, ns.nodes, pairs, at)?,
                        &rest[1..],
                    ),
                    _ => {
                        // Unfiltered: the nodes of that stage this node's deps selected, else all.
                        let chosen: Vec<usize> = ns
                            .node
                            .upstream
                            .iter()
                            .copied()
                            .filter(|u| members.contains(u))
                            .collect();
                        (
                            if chosen.is_empty() {
                                members.clone()
                            } else {
                                chosen
                            },
                            rest,
                        )
                    }
                };
                if let Some(Segment::Index(_)) = rest.first() {
                    return fail(
                        format!(
                            "`${{{expr}}}` indexes the nodes of `{stage}`, which have no order"
                        ),
                        &format!(
                            "pick a node by its matrix values, e.g. ${{stages.{stage}[seed=1].outs[0]}}, or take the i-th output of each node with ${{stages.{stage}.outs[0]}}"
                        ),
                    );
                }
                let paths = match stage_paths(&stage, &selected, ns.nodes, rest) {
                    Ok(paths) => paths,
                    Err((msg, help)) => return fail(format!("`${{{expr}}}`{msg}"), &help),
                };
                Ok(Looked::StageOuts(selected, paths))
            }
            "outs" | "deps" | "out_dir" | "node" | "stage"
                if scope.node.is_some() || head == "out_dir" =>
            {
                let Some(ns) = &scope.node else {
                    return fail(
                        format!("`${{{expr}}}` is not available here"),
                        "use it in `cmd`",
                    );
                };
                let list: Vec<String> = match head.as_str() {
                    "outs" => ns.node.outs.iter().map(|o| o.path.clone()).collect(),
                    "deps" => ns.dep_paths.to_vec(),
                    "out_dir" => vec![ns.node.out_dir.clone()],
                    "node" => return Ok(Looked::Value(Value::String(ns.node.name.clone()))),
                    _ => return Ok(Looked::Value(Value::String(ns.node.stage.clone()))),
                };
                match rest {
                    [] => Ok(Looked::Paths(list)),
                    [Segment::Index(i)] => match list.get(*i) {
                        Some(p) => Ok(Looked::Paths(vec![p.clone()])),
                        None => fail(
                            format!("`${{{expr}}}`: this node has only {} {head}", list.len()),
                            "indexes start at 0",
                        ),
                    },
                    _ => fail(format!("cannot read `${{{expr}}}`"), "e.g. ${outs[0]}"),
                }
            }
            name => {
                // Bare `${x}`: a matrix value, else a var.
                if let Some((_, v)) = scope.matrix.iter().find(|(k, _)| k == name) {
                    return value_at(v, rest);
                }
                if let Some(v) = scope.vars.get(name) {
                    return value_at(v, rest);
                }
                fail(
                    format!("unknown name `{name}` in `${{{expr}}}`"),
                    &format!(
                        "{}; to pass a literal `${{` to the shell, write `$${{`",
                        known_names("vars", scope)
                    ),
                )
            }
        }
    }
}

/// What `${stages.S….outs}`, `.outs[i]` (the i-th output of each selected node) or `.out_dir`
/// gives for the selected nodes; an error is (message tail, help).
fn stage_paths(
    stage: &str,
    selected: &[usize],
    nodes: &[super::Node],
    rest: &[Segment],
) -> std::result::Result<Vec<String>, (String, String)> {
    match field(rest) {
        Some((f, [])) if f == "outs" => Ok(selected
            .iter()
            .flat_map(|&j| nodes[j].outs.iter().map(|o| o.path.clone()))
            .collect()),
        Some((f, [Segment::Index(i)])) if f == "outs" => selected
            .iter()
            .map(|&j| match nodes[j].outs.get(*i) {
                Some(o) => Ok(o.path.clone()),
                None => Err((
                    format!(
                        ": `{}` has only {} output(s)",
                        nodes[j].name,
                        nodes[j].outs.len()
                    ),
                    "indexes start at 0".to_string(),
                )),
            })
            .collect(),
        Some((f, [])) if f == "out_dir" => {
            Ok(selected.iter().map(|&j| nodes[j].out_dir.clone()).collect())
        }
        _ => Err((
            " cannot be read".to_string(),
            format!(
                "a stage offers `outs` (every output), `outs[i]` (the i-th output of each node) and `out_dir`, e.g. ${{stages.{stage}.outs[0]}}"
            ),
        )),
    }
}

fn known_names(kind: &str, scope: &Scope) -> String {
    let names: Vec<String> = match kind {
        "vars" => scope.vars.keys().cloned().collect(),
        "matrix" => scope.matrix.iter().map(|(k, _)| k.clone()).collect(),
        _ => {
            let files = scope.file_params.and_then(Value::as_object);
            scope
                .params
                .map(|p| p.keys().cloned().collect::<Vec<String>>())
                .unwrap_or_default()
                .into_iter()
                .chain(files.into_iter().flat_map(|m| m.keys().cloned()))
                .collect()
        }
    };
    if names.is_empty() {
        format!("no {kind} are defined here")
    } else {
        format!("defined {kind}: {}", names.join(", "))
    }
}

/// The leading `.name` of an expression path, and what follows it.
fn field(rest: &[Segment]) -> Option<(String, &[Segment])> {
    match rest.first() {
        Some(Segment::Name(n)) => Some((n.clone(), &rest[1..])),
        _ => None,
    }
}

fn walk_value<'v>(v: &'v Value, rest: &[Segment]) -> Option<&'v Value> {
    let mut cur = v;
    for s in rest {
        cur = match s {
            Segment::Name(n) => cur.get(n)?,
            Segment::Index(i) => cur.get(*i)?,
            Segment::Filter(_) => return None,
        };
    }
    Some(cur)
}
