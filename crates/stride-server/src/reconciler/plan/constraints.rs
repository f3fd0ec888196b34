//! Marathon's placement constraints, on `hostname` or an agent attribute,
//! judged against where the app's tasks already run.

use super::agents::{AgentInfo, Agents};
use regex::Regex;
use std::collections::BTreeMap;
use stride_log::event::AgentId;
use stride_log::event::app::{Constraint, ConstraintOperator};

/// Where an app's tasks run (or are about to): agent and host name.
#[derive(Debug, Clone, Default)]
pub struct Placed(Vec<(AgentId, String)>);

impl Placed {
    pub fn push(&mut self, agent: AgentId, host: String) {
        self.0.push((agent, host));
    }

    fn values<'a>(&'a self, field: &'a str, agents: &'a Agents) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter_map(move |(agent, host)| {
            if field == "hostname" {
                Some(host.as_str())
            } else {
                agents.get(agent)?.field(field)
            }
        })
    }

    fn count(&self, field: &str, value: &str, agents: &Agents) -> usize {
        self.values(field, agents).filter(|v| *v == value).count()
    }
}

/// An app's constraints, regexes compiled once per plan.
pub struct Rules<'a> {
    rules: Vec<(&'a Constraint, Option<Regex>)>,
}

impl<'a> Rules<'a> {
    pub fn new(constraints: &'a [Constraint]) -> Self {
        let rules = constraints
            .iter()
            .map(|c| {
                let regex = matches!(
                    c.operator,
                    ConstraintOperator::Like | ConstraintOperator::Unlike
                )
                .then(|| c.value.as_deref().unwrap_or_default())
                // Validation accepted the pattern; anchored as Marathon does.
                .and_then(|v| Regex::new(&format!("^(?:{v})$")).ok());
                (c, regex)
            })
            .collect();
        Rules { rules }
    }

    /// The first constraint `agent` breaks, if any.
    pub fn broken_by(
        &self,
        agent: &AgentInfo,
        placed: &Placed,
        agents: &Agents,
    ) -> Option<&'a Constraint> {
        self.rules
            .iter()
            .find(|(c, regex)| !holds(c, regex.as_ref(), agent, placed, agents))
            .map(|(c, _)| *c)
    }
}

fn holds(
    constraint: &Constraint,
    regex: Option<&Regex>,
    agent: &AgentInfo,
    placed: &Placed,
    agents: &Agents,
) -> bool {
    let field = constraint.field.as_str();
    let value = constraint.value.as_deref();
    let Some(own) = agent.field(field) else {
        // An agent without the attribute only satisfies "not like".
        return constraint.operator == ConstraintOperator::Unlike;
    };
    match constraint.operator {
        ConstraintOperator::Unique => placed.count(field, own, agents) == 0,
        ConstraintOperator::Cluster => match value {
            Some(v) if !v.is_empty() => own == v,
            _ => placed.values(field, agents).next().is_none_or(|v| v == own),
        },
        ConstraintOperator::Is => value == Some(own),
        ConstraintOperator::Like => regex.is_some_and(|r| r.is_match(own)),
        ConstraintOperator::Unlike => regex.is_none_or(|r| !r.is_match(own)),
        ConstraintOperator::MaxPer => {
            let max = value.and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
            placed.count(field, own, agents) < max
        }
        ConstraintOperator::GroupBy => least_loaded(field, own, placed, agents),
    }
}

/// GROUP_BY spreads evenly: only a value with the fewest tasks takes more.
fn least_loaded(field: &str, own: &str, placed: &Placed, agents: &Agents) -> bool {
    let mut counts: BTreeMap<&str, usize> = agents
        .all()
        .filter_map(|a| a.field(field))
        .map(|v| (v, 0))
        .collect();
    counts.entry(own).or_insert(0);
    for v in placed.values(field, agents) {
        *counts.entry(v).or_insert(0) += 1;
    }
    let fewest = counts.values().copied().min().unwrap_or(0);
    counts.get(own).copied().unwrap_or(0) <= fewest
}
