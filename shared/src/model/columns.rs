//! Typed access to the columns the model reads from a `RecordBatch`, with errors that name the
//! column and the expected type instead of a downcast panic. Values are read straight from the
//! Arrow buffers, so nothing here allocates per row.

use arrow::array::{Array, Int8Array, Int64Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::ModelError;
use crate::data::schema::EXITED;

/// The named `Int64` feature column of `batch`; `expected` lists every column the caller needs,
/// for the error message.
pub(crate) fn feature_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    expected: &[String],
) -> Result<&'a Int64Array, ModelError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| ModelError::MissingColumn {
            column: name.to_string(),
            expected: expected.to_vec(),
        })?;
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| wrong_type(name, "Int64", column.data_type()))
}

/// The `exited` target column of `batch`.
pub(crate) fn target_column(batch: &RecordBatch) -> Result<&Int8Array, ModelError> {
    let column = batch
        .column_by_name(EXITED)
        .ok_or_else(|| ModelError::MissingColumn {
            column: EXITED.to_string(),
            expected: vec![EXITED.to_string()],
        })?;
    column
        .as_any()
        .downcast_ref::<Int8Array>()
        .ok_or_else(|| wrong_type(EXITED, "Int8", column.data_type()))
}

fn wrong_type(column: &str, expected: &'static str, found: &DataType) -> ModelError {
    ModelError::WrongColumnType {
        column: column.to_string(),
        expected,
        found: found.to_string(),
    }
}

/// Whether row `row` of `array` holds a value (cheap when the array has no null buffer).
#[inline]
pub(crate) fn is_present(array: &dyn Array, row: usize) -> bool {
    array.nulls().is_none_or(|nulls| nulls.is_valid(row))
}

/// The label at `row` as 0/1, or `None` when missing; `global_row` is only for the error.
#[inline]
pub(crate) fn label_at(
    target: &Int8Array,
    row: usize,
    global_row: usize,
) -> Result<Option<u8>, ModelError> {
    if !is_present(target, row) {
        return Ok(None);
    }
    match target.value(row) {
        0 => Ok(Some(0)),
        1 => Ok(Some(1)),
        other => Err(ModelError::InvalidTarget {
            row: global_row,
            value: i64::from(other),
        }),
    }
}
