//! The one schema every data set in the pipeline shares, and the names of its columns.
//!
//! Missing values: an empty (or all-blank) field is a *missing value*, not an error. It is kept
//! as an Arrow null so diagnostics can report the share of missing values per column; the row is
//! accepted. Training and scoring decide what to do with nulls (see the model module).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub const CORPORATION: &str = "corporation";
pub const LASTMONTH_ACTIVITY: &str = "lastmonth_activity";
pub const LASTYEAR_ACTIVITY: &str = "lastyear_activity";
pub const NUMBER_OF_EMPLOYEES: &str = "number_of_employees";
pub const EXITED: &str = "exited";

/// The model's features, in the order the model uses them.
pub const FEATURES: [&str; 3] = [LASTMONTH_ACTIVITY, LASTYEAR_ACTIVITY, NUMBER_OF_EMPLOYEES];

/// Every column, in canonical order.
pub const COLUMNS: [&str; 5] = [
    CORPORATION,
    LASTMONTH_ACTIVITY,
    LASTYEAR_ACTIVITY,
    NUMBER_OF_EMPLOYEES,
    EXITED,
];

/// The numeric columns (features and target), for summary statistics.
pub const NUMERIC_COLUMNS: [&str; 4] = [
    LASTMONTH_ACTIVITY,
    LASTYEAR_ACTIVITY,
    NUMBER_OF_EMPLOYEES,
    EXITED,
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(CORPORATION, DataType::Utf8, true),
        Field::new(LASTMONTH_ACTIVITY, DataType::Int64, true),
        Field::new(LASTYEAR_ACTIVITY, DataType::Int64, true),
        Field::new(NUMBER_OF_EMPLOYEES, DataType::Int64, true),
        Field::new(EXITED, DataType::Int8, true),
    ]))
});

/// The client-data schema: `corporation` (string), three non-negative `Int64` features and the
/// `exited` target (`Int8`, 0 or 1). Every column is nullable: null means "missing in the source".
pub fn client_schema() -> SchemaRef {
    SCHEMA.clone()
}
