//! A stage's `plots:` entries, resolved: the series file (one of the node's outputs, or a
//! file inside an output directory), its x and y columns and which axes are logarithmic.
//! The columns themselves are checked when the file is read (`cegraph plots`): it does not
//! exist when the pipeline is loaded.

use serde::{Deserialize, Serialize};

use super::model::{At, PlotColumns, PlotSpec};
use super::{Resolver, Scope};
use crate::error::Result;
use crate::kind::OutputDecl;

/// One series file of a node, as `cegraph plots` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlotDecl {
    /// Workspace-relative path of the file.
    pub file: String,
    /// The default x column.
    pub x: String,
    /// The y columns (one chart each).
    pub y: Vec<String>,
    #[serde(default)]
    pub log_x: bool,
    #[serde(default)]
    pub log_y: bool,
}

/// The output that holds `file`: the output itself, or the directory output it lies in.
pub fn holding_output<'a>(outs: &'a [OutputDecl], file: &str) -> Option<&'a OutputDecl> {
    outs.iter().find(|o| {
        o.path == file
            || file
                .strip_prefix(o.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

impl Resolver<'_> {
    pub(super) fn resolve_plots(
        &self,
        specs: &[At<PlotSpec>],
        scope: &Scope,
        out_dir: &str,
        outs: &[OutputDecl],
    ) -> Result<Vec<PlotDecl>> {
        specs
            .iter()
            .map(|spec| self.resolve_plot(spec, scope, out_dir, outs))
            .collect()
    }

    fn resolve_plot(
        &self,
        spec: &At<PlotSpec>,
        scope: &Scope,
        out_dir: &str,
        outs: &[OutputDecl],
    ) -> Result<PlotDecl> {
        let s = spec.value();
        let file = self.interpolate_out(&s.file, scope, out_dir)?;
        if holding_output(outs, &file).is_none() {
            return self.err(
                s.file.line_col(),
                format!("plot file `{file}` is not one of the stage's `outs`"),
                Some("list it (or the directory holding it) under `outs` too"),
            );
        }
        let x = self.interpolate_str(&s.x, scope)?;
        if x.trim().is_empty() {
            return self.err(
                s.x.line_col(),
                "plot `x` is empty",
                Some("name the file's x column, e.g. `x: step`"),
            );
        }
        let y = match s.y.value() {
            PlotColumns::One(c) => vec![c.clone()],
            PlotColumns::Many(cs) => cs.clone(),
        };
        if y.is_empty() || y.iter().any(|c| c.trim().is_empty()) {
            return self.err(
                s.y.line_col(),
                "plot `y` names no column",
                Some("name the y column(s), e.g. `y: val_loss` or `y: [train_loss, val_loss]`"),
            );
        }
        Ok(PlotDecl {
            file,
            x,
            y,
            log_x: s.log_x,
            log_y: s.log_y,
        })
    }
}
