//! Constraints and host-network port definitions.

use super::{MAX_PORT, Problems, valid_protocol};
use crate::event::app::{AppDefinition, Constraint, ConstraintOperator};
use std::collections::HashSet;

pub(super) fn check_constraints(constraints: &[Constraint], problems: &mut Problems) {
    for (i, constraint) in constraints.iter().enumerate() {
        let path = format!("/constraints/{i}");
        if constraint.field.trim().is_empty() {
            problems.add(
                &path,
                "the field must name `hostname` or an agent attribute",
            );
        }
        if let Err(error) = check_operator_value(constraint.operator, constraint.value.as_deref()) {
            problems.add(&path, error);
        }
    }
}

fn check_operator_value(operator: ConstraintOperator, value: Option<&str>) -> Result<(), String> {
    let name = operator.name();
    match (operator, value) {
        (ConstraintOperator::Unique, Some(_)) => Err("UNIQUE takes no value".into()),
        (ConstraintOperator::Unique | ConstraintOperator::Cluster, _) => Ok(()),
        (ConstraintOperator::GroupBy, None) => Ok(()),
        (ConstraintOperator::GroupBy | ConstraintOperator::MaxPer, Some(v)) => {
            match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(()),
                _ => Err(format!("{name} needs a positive integer, got '{v}'")),
            }
        }
        (ConstraintOperator::Like | ConstraintOperator::Unlike, Some(v)) => {
            regex_syntax::Parser::new()
                .parse(v)
                .map(drop)
                .map_err(|e| format!("'{v}' is not a valid regular expression: {e}"))
        }
        (ConstraintOperator::Is, Some(_)) => Ok(()),
        (_, None) => Err(format!("{name} needs a value")),
    }
}

pub(super) fn check_port_definitions(definition: &AppDefinition, problems: &mut Problems) {
    let mut seen_ports = HashSet::new();
    let mut seen_names = HashSet::new();
    for (i, port) in definition.port_definitions.iter().enumerate() {
        if port.port > MAX_PORT {
            problems.add(
                format!("/portDefinitions/{i}/port"),
                format!("got {}, expected 0 to {MAX_PORT}", port.port),
            );
        } else if port.port != 0 && !seen_ports.insert(port.port) {
            problems.add(
                format!("/portDefinitions/{i}/port"),
                format!("service port {} is declared twice", port.port),
            );
        }
        if !valid_protocol(&port.protocol) {
            problems.add(
                format!("/portDefinitions/{i}/protocol"),
                "must be tcp, udp or udp,tcp",
            );
        }
        if let Some(name) = &port.name {
            if !seen_names.insert(name.as_str()) {
                problems.add(
                    format!("/portDefinitions/{i}/name"),
                    "Port names must be unique.",
                );
            }
        }
    }
}
