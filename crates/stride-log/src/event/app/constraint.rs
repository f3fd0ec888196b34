//! Placement constraints in Marathon's array shape: `[field, OPERATOR]` or
//! `[field, OPERATOR, value]`.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One constraint on where tasks may run. `field` is `hostname` or an agent
/// attribute; whether `value` fits `operator` is checked by validation, so
/// every misfit can be reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub field: String,
    pub operator: ConstraintOperator,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintOperator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl ConstraintOperator {
    const ALL: [ConstraintOperator; 7] = [
        ConstraintOperator::Unique,
        ConstraintOperator::Cluster,
        ConstraintOperator::GroupBy,
        ConstraintOperator::Like,
        ConstraintOperator::Unlike,
        ConstraintOperator::MaxPer,
        ConstraintOperator::Is,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConstraintOperator::Unique => "UNIQUE",
            ConstraintOperator::Cluster => "CLUSTER",
            ConstraintOperator::GroupBy => "GROUP_BY",
            ConstraintOperator::Like => "LIKE",
            ConstraintOperator::Unlike => "UNLIKE",
            ConstraintOperator::MaxPer => "MAX_PER",
            ConstraintOperator::Is => "IS",
        }
    }

    fn from_name(name: &str) -> Option<ConstraintOperator> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.value.is_some() { 3 } else { 2 };
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&self.field)?;
        seq.serialize_element(self.operator.name())?;
        if let Some(value) = &self.value {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Constraint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ConstraintVisitor)
    }
}

struct ConstraintVisitor;

impl<'de> Visitor<'de> for ConstraintVisitor {
    type Value = Constraint;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a constraint [field, OPERATOR] or [field, OPERATOR, value]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Constraint, A::Error> {
        let field: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let operator: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let value: Option<String> = seq.next_element()?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        let operator = ConstraintOperator::from_name(&operator).ok_or_else(|| {
            let names: Vec<&str> = ConstraintOperator::ALL.iter().map(|o| o.name()).collect();
            de::Error::custom(format!(
                "unknown constraint operator '{operator}', expected one of {}",
                names.join(", ")
            ))
        })?;
        Ok(Constraint {
            field,
            operator,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_a_value() {
        for text in [r#"["hostname","UNIQUE"]"#, r#"["rack","GROUP_BY","3"]"#] {
            let constraint: Constraint = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&constraint).unwrap(), text);
        }
    }

    #[test]
    fn rejects_unknown_operators_and_bad_arity() {
        for text in [
            r#"["hostname","SOMETIMES"]"#,
            r#"["hostname"]"#,
            r#"["a","IS","b","c"]"#,
            r#""hostname:UNIQUE""#,
        ] {
            assert!(serde_json::from_str::<Constraint>(text).is_err(), "{text}");
        }
    }
}
