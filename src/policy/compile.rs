//! Stage 3: checked policy → compiled tables.
//!
//! Resolves inheritance (a plan's features and limits include its ancestors'),
//! interns features into bitsets, and builds the per-method route tables.

use crate::engine::compiled::{Compiled, FeatureDef, NameIndex, PlanDef, RoleDef, RuleDef};
use crate::engine::routes::{METHODS, RouteSpec, RouteTable};
use crate::engine::{BitSet, Limit, Revision};
use std::sync::atomic::{AtomicU64, Ordering};

use super::model::LimitValue;
use super::validate::Checked;

fn index<'a>(names: impl Iterator<Item = &'a str>) -> NameIndex {
    names
        .enumerate()
        .map(|(i, n)| (Box::from(n), i as u32))
        .collect()
}

pub(crate) fn compile(
    checked: Checked,
    name: &str,
    revision: Revision,
) -> Result<Compiled, String> {
    let n_features = checked.features.len();
    let n_limits = checked.limits.len();

    // Plans extend only lower plans (validation guarantees it), so one pass in tier
    // order sees every parent resolved before its children.
    let mut plans: Vec<PlanDef> = Vec::with_capacity(checked.plans.len());
    for p in &checked.plans {
        let (mut features, mut limits) = match p.extends.and_then(|id| plans.get(id as usize)) {
            Some(parent) => (parent.features.clone(), parent.limits.to_vec()),
            None => (
                BitSet::with_capacity(n_features),
                vec![Limit::Count(0); n_limits],
            ),
        };
        for &f in &p.features {
            features.insert(f);
        }
        for &(l, v) in &p.limits {
            // One slot per declared limit, and `l` is a declared limit's id.
            #[allow(clippy::indexing_slicing)]
            let slot = &mut limits[l as usize];
            *slot = match v {
                LimitValue::Count(n) => Limit::Count(n),
                LimitValue::Unlimited => Limit::Unlimited,
            };
        }
        plans.push(PlanDef {
            name: p.name.as_str().into(),
            description: p.description.as_deref().map(Into::into),
            features,
            limits: limits.into(),
        });
    }

    let roles: Vec<RoleDef> = checked
        .roles
        .iter()
        .map(|r| {
            let mut features = BitSet::with_capacity(n_features);
            for &f in &r.features {
                features.insert(f);
            }
            RoleDef {
                name: r.name.as_str().into(),
                features,
            }
        })
        .collect();

    let features: Vec<FeatureDef> = checked
        .features
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let id = i as u32;
            FeatureDef {
                name: f.name.into(),
                description: f.description.map(Into::into),
                when: f.when,
                granting_plans: (0..plans.len() as u32)
                    .filter(|&p| {
                        plans
                            .get(p as usize)
                            .is_some_and(|d| d.features.contains(id))
                    })
                    .collect(),
                first_role: (0..roles.len() as u32).find(|&r| {
                    roles
                        .get(r as usize)
                        .is_some_and(|d| d.features.contains(id))
                }),
            }
        })
        .collect();

    let specs: Vec<RouteSpec> = checked
        .rules
        .iter()
        .map(|r| RouteSpec {
            pattern: &r.pattern,
            methods: r.methods.as_deref(),
        })
        .collect();
    let table = RouteTable::build(&specs)?;

    let rules = checked
        .rules
        .into_iter()
        .map(|r| RuleDef {
            methods: r.methods.map(|ms| {
                ms.into_iter()
                    .filter_map(|m| METHODS.get(m).map(|&m| Box::from(m)))
                    .collect()
            }),
            pattern: r.pattern.into(),
            line: r.line,
            access: r.access,
            enforce: r.enforce,
        })
        .collect();

    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    Ok(Compiled {
        name: name.into(),
        revision,
        instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        plan_ids: index(plans.iter().map(|p| &*p.name)),
        feature_ids: index(features.iter().map(|f| &*f.name)),
        role_ids: index(roles.iter().map(|r| &*r.name)),
        limit_ids: index(checked.limits.iter().map(String::as_str)),
        limits: checked.limits.into_iter().map(Into::into).collect(),
        plans,
        default_plan: checked.default_plan,
        trial_plan: checked.trial_plan,
        features,
        roles,
        rules,
        table,
        unmatched_allows: checked.unmatched_allows,
        claims: checked.claims,
    })
}
