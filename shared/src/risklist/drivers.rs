//! Drivers in words. The standardised value says where the client stands against the clients
//! the model was trained on (in standard deviations from their mean); the contribution's sign
//! says whether that pushes the risk up or down. Sizes: at least 2 standard deviations is
//! "far", at least 1 "well", at least 0.25 "slightly", less is "about average".

use crate::data::schema::{LASTMONTH_ACTIVITY, LASTYEAR_ACTIVITY, NUMBER_OF_EMPLOYEES};

fn degree(standardized: f64) -> Option<&'static str> {
    let size = standardized.abs();
    if size >= 2.0 {
        Some("far")
    } else if size >= 1.0 {
        Some("well")
    } else if size >= 0.25 {
        Some("slightly")
    } else {
        None
    }
}

/// What a manager reads for one driver, e.g. "activity last month far below the average
/// client's: raises the risk".
pub fn driver_phrase(
    feature: &str,
    value: Option<i64>,
    standardized: f64,
    contribution: f64,
) -> String {
    let what = match feature {
        LASTMONTH_ACTIVITY => "activity last month",
        LASTYEAR_ACTIVITY => "activity over the last year",
        NUMBER_OF_EMPLOYEES => "headcount",
        other => other,
    };
    if value.is_none() {
        return format!("{what} unknown (taken as the average client's): no effect");
    }
    let position = match degree(standardized) {
        None => format!("{what} about the average client's"),
        Some(degree) if standardized < 0.0 => format!("{what} {degree} below the average client's"),
        Some(degree) => format!("{what} {degree} above the average client's"),
    };
    let effect = if contribution > 0.0 {
        "raises the risk"
    } else if contribution < 0.0 {
        "lowers the risk"
    } else {
        "no effect"
    };
    format!("{position}: {effect}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_follow_the_size_and_sign_of_the_standardised_value() {
        assert_eq!(
            driver_phrase(LASTMONTH_ACTIVITY, Some(3), -2.4, 1.7),
            "activity last month far below the average client's: raises the risk"
        );
        assert_eq!(
            driver_phrase(LASTYEAR_ACTIVITY, Some(900), 1.2, -0.4),
            "activity over the last year well above the average client's: lowers the risk"
        );
        assert_eq!(
            driver_phrase(NUMBER_OF_EMPLOYEES, Some(50), 0.3, 0.01),
            "headcount slightly above the average client's: raises the risk"
        );
        assert_eq!(
            driver_phrase(NUMBER_OF_EMPLOYEES, Some(50), 0.1, -0.01),
            "headcount about the average client's: lowers the risk"
        );
        assert_eq!(
            driver_phrase(LASTMONTH_ACTIVITY, None, 0.0, 0.0),
            "activity last month unknown (taken as the average client's): no effect"
        );
    }
}
