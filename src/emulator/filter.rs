//! The Data Management filter language (`filter[field]-op=v1,v2`) applied to rendered
//! resources, so every endpoint filters the same way the reference describes: comma = OR,
//! several filters = AND, `attributes.`/`meta.` prefixes optional, case-sensitive.

use super::request::Req;
use serde_json::Value;

/// One `filter[...]` parameter.
#[derive(Debug, Clone)]
pub struct Filter {
    path: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Ge,
    Gt,
    Starts,
    Ends,
    Contains,
}

/// All filters of a request (other than `page[...]`).
pub fn from_request(req: &Req) -> Vec<Filter> {
    req.query
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("filter[")?;
            let (field, suffix) = rest.split_once(']')?;
            let op = match suffix {
                "" | "-eq" => Op::Eq,
                "-lt" => Op::Lt,
                "-le" => Op::Le,
                "-ge" => Op::Ge,
                "-gt" => Op::Gt,
                "-starts" => Op::Starts,
                "-ends" => Op::Ends,
                "-contains" => Op::Contains,
                _ => return None,
            };
            Some(Filter {
                path: field.to_string(),
                op,
                values: v.split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// Whether any filter names `field` (e.g. `hidden`).
pub fn mentions(filters: &[Filter], field: &str) -> bool {
    filters
        .iter()
        .any(|f| f.path == field || f.path == format!("attributes.{field}"))
}

/// Whether `resource` passes every filter.
pub fn matches(filters: &[Filter], resource: &Value) -> bool {
    filters.iter().all(|f| f.matches(resource))
}

impl Filter {
    fn lookup<'a>(&self, r: &'a Value) -> Option<&'a Value> {
        let direct = |path: &str| path.split('.').try_fold(r, |v, k| v.get(k));
        let p = self.path.as_str();
        direct(p)
            .or_else(|| direct(&format!("attributes.{p}")))
            .or_else(|| direct(&format!("meta.{p}")))
            .or_else(|| {
                (p == "name")
                    .then(|| direct("attributes.displayName"))
                    .flatten()
            })
    }

    fn matches(&self, r: &Value) -> bool {
        let Some(v) = self.lookup(r) else {
            return false;
        };
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => return false,
            other => other.to_string(),
        };
        self.values.iter().any(|want| match self.op {
            Op::Eq => &text == want,
            Op::Starts => text.starts_with(want.as_str()),
            Op::Ends => text.ends_with(want.as_str()),
            Op::Contains => text.contains(want.as_str()),
            Op::Lt | Op::Le | Op::Ge | Op::Gt => {
                let ord = match (text.parse::<f64>(), want.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    // Dates share a prefix-ordered ISO spelling, so text order is time order.
                    _ => Some(text.as_str().cmp(want.as_str())),
                };
                matches!(
                    (self.op, ord),
                    (Op::Lt, Some(std::cmp::Ordering::Less))
                        | (
                            Op::Le,
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        )
                        | (
                            Op::Ge,
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        )
                        | (Op::Gt, Some(std::cmp::Ordering::Greater))
                )
            }
        })
    }
}
