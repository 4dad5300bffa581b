//! Running an ONNX model with tract, a whole batch at a time.

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// A loaded, optimised model taking `[rows, width]` `f32` features and
/// giving one score per row.
#[derive(Debug)]
pub struct Runtime {
    state: TypedSimpleState,
    width: usize,
    column: usize,
    /// Scores of the last run, reused between batches.
    scores: Vec<f32>,
}

impl Runtime {
    /// Parses `bytes` as an ONNX model with one input of `width` features
    /// and reads scores from column `column` of output `output`. Every
    /// problem is a message for the operator; the model is also run once on
    /// one row of zeros, so a model that loads but cannot run is refused
    /// here rather than on the first batch.
    pub fn load(bytes: &[u8], width: usize, output: &str, column: usize) -> Result<Self, String> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| format!("not a readable ONNX model: {}", root_cause(&e)))?;
        let inputs = model.input_outlets().map_err(|e| e.to_string())?.len();
        if inputs != 1 {
            return Err(format!(
                "the model has {inputs} inputs; the slot feeds exactly one [rows, features] input"
            ));
        }
        let declared = model
            .input_fact(0)
            .map_err(|e| e.to_string())?
            .shape
            .clone();
        let dims: Vec<Option<i64>> = declared
            .dims()
            .map(|d| d.concretize().and_then(|d| d.as_i64()))
            .collect();
        if let Some(rank) = declared.rank().concretize()
            && rank != 2
        {
            return Err(format!(
                "the model input has rank {rank}; the slot feeds [rows, features]"
            ));
        }
        if let Some(Some(declared_width)) = dims.get(1)
            && *declared_width != width as i64
        {
            return Err(format!(
                "the model takes {declared_width} features per row, the spec lists {width}"
            ));
        }
        if model.find_outlet_label(output).is_none()
            && !model.nodes().iter().any(|n| n.name == output)
        {
            let names: Vec<String> = model
                .output_outlets()
                .map_err(|e| e.to_string())?
                .iter()
                .filter_map(|o| model.outlet_label(*o).map(str::to_owned))
                .collect();
            return Err(format!(
                "no output {output:?} in the model (its outputs: {})",
                names.join(", ")
            ));
        }
        model
            .select_outputs_by_name([output])
            .map_err(|e| format!("output {output:?}: {}", root_cause(&e)))?;
        let rows = model.sym("rows");
        model
            .set_input_fact(
                0,
                f32::fact(tvec![TDim::from(rows), TDim::from(width)]).into(),
            )
            .map_err(|e| e.to_string())?;
        let typed = model.into_optimized().map_err(|e| {
            format!(
                "the model cannot run on [rows, {width}] f32 features: {}",
                root_cause(&e)
            )
        })?;
        let fact = typed.output_fact(0).map_err(|e| e.to_string())?.clone();
        if fact.datum_type != f32::datum_type() {
            return Err(format!(
                "output {output:?} is {:?}, expected f32 scores",
                fact.datum_type
            ));
        }
        let shape: Vec<Option<i64>> = fact.shape.iter().map(|d| d.as_i64()).collect();
        match shape.as_slice() {
            [_] if column == 0 => {}
            [_, Some(columns)] if (column as i64) < *columns => {}
            _ => {
                return Err(format!(
                    "output {output:?} has shape {:?}; expected [rows] or [rows, k] with k > column {column}",
                    fact.shape
                ));
            }
        }
        let plan = typed
            .into_runnable()
            .map_err(|e| format!("the model cannot be planned: {}", root_cause(&e)))?;
        let state = plan.spawn().map_err(|e| e.to_string())?;
        let mut runtime = Self {
            state,
            width,
            column,
            scores: Vec::new(),
        };
        let probe = vec![0.0; width];
        runtime
            .score(&probe)
            .map_err(|e| format!("the model fails on one row of zeros: {e}"))?;
        Ok(runtime)
    }

    /// Scores `features` (rows × width, row-major): one score per row.
    pub fn score(&mut self, features: &[f32]) -> Result<&[f32], String> {
        let rows = features.len() / self.width.max(1);
        self.scores.clear();
        if rows == 0 {
            return Ok(&self.scores);
        }
        let input = Tensor::from_shape(&[rows, self.width], features).map_err(|e| e.to_string())?;
        let outputs = self
            .state
            .run(tvec!(input.into_tvalue()))
            .map_err(|e| root_cause(&e))?;
        let output = outputs.first().ok_or("the model gave no output")?;
        let view = output
            .to_plain_array_view::<f32>()
            .map_err(|e| e.to_string())?;
        match view.ndim() {
            1 => self.scores.extend(view.iter().copied()),
            2 => {
                let view = view
                    .into_dimensionality::<tract_ndarray::Ix2>()
                    .map_err(|e| e.to_string())?;
                self.scores.extend(view.column(self.column).iter().copied());
            }
            n => return Err(format!("output of rank {n}")),
        }
        if self.scores.len() != rows {
            return Err(format!(
                "the model gave {} scores for {rows} rows",
                self.scores.len()
            ));
        }
        Ok(&self.scores)
    }
}

/// tract's errors nest context; the innermost cause is the useful part,
/// the outer ones are kept for the reader in one line.
fn root_cause(e: &TractError) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
