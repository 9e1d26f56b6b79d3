//! Drivers in words. The standardised value says where the client stands against the clients
//! the model was trained on (in standard deviations from their mean); the contribution's sign
//! says whether that pushes the risk up or down. Sizes: at least 2 standard deviations is
//! "far", at least 1 "well", at least 0.25 "slightly", less is "about average". A list builds
//! each feature's [`Phrases`] once.

use std::sync::Arc;

use crate::data::schema::{LASTMONTH_ACTIVITY, LASTYEAR_ACTIVITY, NUMBER_OF_EMPLOYEES};

/// The size words, largest first, and the smallest standardised distance each needs.
const DEGREES: [(&str, f64); 3] = [("far", 2.0), ("well", 1.0), ("slightly", 0.25)];
const EFFECTS: [&str; 3] = ["raises the risk", "lowers the risk", "no effect"];

/// Every phrase one feature's driver can read (unknown; 3 sizes × 2 sides and "about average",
/// × 3 effects), made once per list rather than once per client; a client's phrase is kept as
/// its index ([`Phrases::index_of`]).
pub struct Phrases {
    /// Index 0: the value is unknown; then by position (far below … about average … far
    /// above) and, within a position, by effect.
    all: Vec<Arc<str>>,
}

impl Phrases {
    pub fn new(feature: &str) -> Self {
        let what = match feature {
            LASTMONTH_ACTIVITY => "activity last month",
            LASTYEAR_ACTIVITY => "activity over the last year",
            NUMBER_OF_EMPLOYEES => "headcount",
            other => other,
        };
        let position = |index: usize| match index {
            0..3 => format!("{what} {} below the average client's", DEGREES[index].0),
            3 => format!("{what} about the average client's"),
            _ => format!("{what} {} above the average client's", DEGREES[6 - index].0),
        };
        let mut all: Vec<Arc<str>> =
            vec![format!("{what} unknown (taken as the average client's): no effect").into()];
        for index in 0..7 {
            let position = position(index);
            all.extend(EFFECTS.map(|effect| format!("{position}: {effect}").into()));
        }
        Phrases { all }
    }

    /// The index of the phrase of a driver with this raw value, standardised value and
    /// contribution.
    pub fn index_of(&self, value: Option<i64>, standardized: f64, contribution: f64) -> u8 {
        if value.is_none() {
            return 0;
        }
        let size = standardized.abs();
        let degree = DEGREES.iter().position(|(_, at_least)| size >= *at_least);
        let position = match degree {
            None => 3,
            Some(degree) if standardized < 0.0 => degree,
            Some(degree) => 6 - degree,
        };
        let effect = if contribution > 0.0 {
            0
        } else if contribution < 0.0 {
            1
        } else {
            2
        };
        // At most 1 + 6 × 3 + 2 = 21.
        (1 + position * 3 + effect) as u8
    }

    /// The phrase at `index` (from [`Phrases::index_of`]).
    pub fn get(&self, index: u8) -> &Arc<str> {
        &self.all[usize::from(index)]
    }

    /// The phrase of a driver with this raw value, standardised value and contribution.
    pub fn of(&self, value: Option<i64>, standardized: f64, contribution: f64) -> &Arc<str> {
        self.get(self.index_of(value, standardized, contribution))
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
    Phrases::new(feature)
        .of(value, standardized, contribution)
        .to_string()
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
        // The boundaries belong to the larger size; zero contribution has no effect.
        assert_eq!(
            driver_phrase(LASTYEAR_ACTIVITY, Some(1), -1.0, 0.0),
            "activity over the last year well below the average client's: no effect"
        );
        assert_eq!(
            driver_phrase(NUMBER_OF_EMPLOYEES, Some(1), 2.0, 0.5),
            "headcount far above the average client's: raises the risk"
        );
        assert_eq!(
            driver_phrase(NUMBER_OF_EMPLOYEES, Some(1), -0.25, -0.5),
            "headcount slightly below the average client's: lowers the risk"
        );
    }
}
