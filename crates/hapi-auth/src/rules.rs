//! Per-dataset rights: which datasets an identity may read, and which recent records
//! need an extra role (embargo).
//!
//! ```toml
//! anonymous = ["demo/*"]                  # everyone, even without a token
//! authenticated = ["spase://SSA/*"]       # any valid token or login
//! [[rule]]                                # ANY listed scope, role, client or subject
//! datasets = ["private/*"]
//! roles = ["team-a"]
//! clients = ["fdcad2908e964bbc8ca4ed25bdf25e1b"]
//! [[embargo]]                             # records newer than now - age need the role
//! datasets = ["private/*"]
//! age = "P7D"
//! role = "embargo-reader"
//! ```
//!
//! Patterns are dataset ids with `*` for any run of characters.

use std::time::Duration;

use serde::Deserialize;

use crate::Identity;
use crate::glob;

/// The `[access]` configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Dataset patterns readable without credentials.
    #[serde(default)]
    pub anonymous: Vec<String>,
    /// Dataset patterns readable by any valid identity.
    #[serde(default)]
    pub authenticated: Vec<String>,
    /// Grants to identities with a given scope, role, client id or subject.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    /// Embargoes on recent records.
    #[serde(default)]
    pub embargo: Vec<EmbargoConfig>,
}

/// Grants `datasets` to an identity that has ANY of the listed scopes, roles, client
/// ids or subjects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Dataset patterns.
    pub datasets: Vec<String>,
    /// Scopes that grant them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles (or groups) that grant them.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Client ids that grant them.
    #[serde(default)]
    pub clients: Vec<String>,
    /// Subjects that grant them.
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// Records of `datasets` newer than now − `age` need `role`; older ones are open to
/// everyone who may read the dataset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbargoConfig {
    /// Dataset patterns.
    pub datasets: Vec<String>,
    /// ISO 8601 duration, e.g. `P7D`.
    pub age: String,
    /// The role that lifts the embargo.
    pub role: String,
}

#[derive(Debug, Clone)]
struct Rule {
    datasets: Vec<String>,
    scopes: Vec<String>,
    roles: Vec<String>,
    clients: Vec<String>,
    subjects: Vec<String>,
}

impl Rule {
    fn grants(&self, who: &Identity) -> bool {
        who.scopes.iter().any(|s| self.scopes.contains(s))
            || who.roles.iter().any(|r| self.roles.contains(r))
            || who.client_id.as_ref().is_some_and(|c| self.clients.contains(c))
            || self.subjects.contains(&who.subject)
    }
}

#[derive(Debug, Clone)]
struct Embargo {
    datasets: Vec<String>,
    age: Duration,
    role: String,
}

/// Compiled, validated access rules.
#[derive(Debug, Clone)]
pub struct AccessRules {
    anonymous: Vec<String>,
    authenticated: Vec<String>,
    rules: Vec<Rule>,
    embargoes: Vec<Embargo>,
}

fn any_match(patterns: &[String], dataset: &str) -> bool {
    patterns.iter().any(|p| glob::matches(p, dataset))
}

/// Patterns are non-empty and free of whitespace and control characters: those are
/// typos (a stray space would silently match nothing).
fn check_patterns(what: &str, patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        if p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{what}: bad dataset pattern {p:?} (empty, or with spaces or control characters)"
            ));
        }
    }
    Ok(())
}

fn check_names(what: &str, names: &[String]) -> Result<(), String> {
    match names.iter().find(|n| n.trim().is_empty()) {
        Some(n) => Err(format!("{what}: empty name {n:?}")),
        None => Ok(()),
    }
}

impl AccessRules {
    /// Validates and compiles the configuration. The error names the bad pattern,
    /// duration or rule.
    pub fn new(cfg: &RulesConfig) -> Result<AccessRules, String> {
        check_patterns("anonymous", &cfg.anonymous)?;
        check_patterns("authenticated", &cfg.authenticated)?;
        let mut rules = Vec::with_capacity(cfg.rules.len());
        for (i, r) in cfg.rules.iter().enumerate() {
            let what = format!("rule {}", i + 1);
            if r.datasets.is_empty() {
                return Err(format!("{what}: no datasets"));
            }
            check_patterns(&what, &r.datasets)?;
            if r.scopes.is_empty() && r.roles.is_empty() && r.clients.is_empty() && r.subjects.is_empty() {
                return Err(format!("{what}: grants to nobody (list scopes, roles, clients or subjects)"));
            }
            for (kind, names) in [
                ("scopes", &r.scopes),
                ("roles", &r.roles),
                ("clients", &r.clients),
                ("subjects", &r.subjects),
            ] {
                check_names(&format!("{what} {kind}"), names)?;
            }
            rules.push(Rule {
                datasets: r.datasets.clone(),
                scopes: r.scopes.clone(),
                roles: r.roles.clone(),
                clients: r.clients.clone(),
                subjects: r.subjects.clone(),
            });
        }
        let mut embargoes = Vec::with_capacity(cfg.embargo.len());
        for (i, e) in cfg.embargo.iter().enumerate() {
            let what = format!("embargo {}", i + 1);
            if e.datasets.is_empty() {
                return Err(format!("{what}: no datasets"));
            }
            check_patterns(&what, &e.datasets)?;
            let nanos = hapi_core::duration::parse(&e.age)
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{what}: bad age {:?} (an ISO 8601 duration such as P7D)", e.age))?;
            let age = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
            if e.role.trim().is_empty() {
                return Err(format!("{what}: empty role"));
            }
            embargoes.push(Embargo { datasets: e.datasets.clone(), age, role: e.role.clone() });
        }
        Ok(AccessRules {
            anonymous: cfg.anonymous.clone(),
            authenticated: cfg.authenticated.clone(),
            rules,
            embargoes,
        })
    }

    /// Everyone reads everything, with no embargo: a server without access control.
    pub fn allow_all() -> AccessRules {
        AccessRules {
            anonymous: vec!["*".to_owned()],
            authenticated: Vec::new(),
            rules: Vec::new(),
            embargoes: Vec::new(),
        }
    }

    /// Whether `who` (`None`: anonymous) may read `dataset` at all.
    pub fn can_read(&self, who: Option<&Identity>, dataset: &str) -> bool {
        if any_match(&self.anonymous, dataset) {
            return true;
        }
        let Some(who) = who else { return false };
        any_match(&self.authenticated, dataset)
            || self.rules.iter().any(|r| any_match(&r.datasets, dataset) && r.grants(who))
    }

    /// The embargo age that applies to `who` for `dataset`: records newer than now −
    /// age are hidden. With several embargoes on a dataset the longest one that `who`
    /// lacks the role for wins. `None`: everything `can_read` allows is visible.
    pub fn embargo(&self, who: Option<&Identity>, dataset: &str) -> Option<Duration> {
        self.embargoes
            .iter()
            .filter(|e| any_match(&e.datasets, dataset))
            .filter(|e| !who.is_some_and(|w| w.has_role(&e.role)))
            .map(|e| e.age)
            .max()
    }

    /// Whether any dataset is open to anonymous callers (then requests without
    /// credentials go on, and the catalog shows them just those).
    pub fn has_anonymous(&self) -> bool {
        !self.anonymous.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_all_reads_everything_without_embargo() {
        let open = AccessRules::allow_all();
        for id in ["ds1", "spase://SSA/x", "all/kinds+types:α☃"] {
            assert!(open.can_read(None, id));
            assert_eq!(open.embargo(None, id), None);
        }
        assert!(open.has_anonymous());
    }

    fn who(subject: &str, client: Option<&str>, scopes: &[&str], roles: &[&str]) -> Identity {
        Identity {
            subject: subject.to_owned(),
            client_id: client.map(str::to_owned),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: 0,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rules() -> AccessRules {
        let cfg = RulesConfig {
            anonymous: strings(&["demo/*"]),
            authenticated: strings(&["spase://SSA/*"]),
            rules: vec![
                RuleConfig {
                    datasets: strings(&["team-a/*"]),
                    roles: strings(&["team-a"]),
                    ..RuleConfig::default()
                },
                RuleConfig {
                    datasets: strings(&["private/x", "private/y*"]),
                    clients: strings(&["fdcad2908e964bbc8ca4ed25bdf25e1b"]),
                    subjects: strings(&["alice"]),
                    scopes: strings(&["hapi:private"]),
                    ..RuleConfig::default()
                },
            ],
            embargo: vec![
                EmbargoConfig {
                    datasets: strings(&["team-a/*"]),
                    age: "P7D".to_owned(),
                    role: "embargo".to_owned(),
                },
                EmbargoConfig {
                    datasets: strings(&["team-a/slow"]),
                    age: "P30D".to_owned(),
                    role: "pi".to_owned(),
                },
            ],
        };
        AccessRules::new(&cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn who_reads_what() {
        let r = rules();
        let anon = None;
        let plain = who("bob", Some("c1"), &["swe_hapiserver"], &[]);
        let team = who("carol", Some("c2"), &[], &["team-a"]);
        let client = who("svc", Some("fdcad2908e964bbc8ca4ed25bdf25e1b"), &[], &[]);
        let alice = who("alice", None, &[], &[]);
        let scoped = who("z", None, &["hapi:private"], &[]);
        let ssa = "spase://SSA/NumericalData/D3S/d3s_mtgs1_ngrm_science_ep_l1_bt_v1";
        for (id, ds, want) in [
            (anon, "demo/a", true),
            (anon, ssa, false),
            (anon, "team-a/x", false),
            (Some(&plain), "demo/a", true),
            (Some(&plain), ssa, true),
            (Some(&plain), "team-a/x", false),
            (Some(&plain), "private/x", false),
            (Some(&team), "team-a/x", true),
            (Some(&team), "team-b/x", false),
            (Some(&client), "private/x", true),
            (Some(&client), "private/yz", true),
            (Some(&client), "private/z", false),
            (Some(&alice), "private/x", true),
            (Some(&scoped), "private/y", true),
            (Some(&scoped), "team-a/x", false),
            (Some(&plain), "unknown", false),
        ] {
            assert_eq!(r.can_read(id, ds), want, "{:?} {ds}", id.map(|i| &i.subject));
        }
        assert!(r.has_anonymous());
        assert!(!AccessRules::new(&RulesConfig::default()).is_ok_and(|r| r.has_anonymous()));
    }

    #[test]
    fn embargoes() {
        let r = rules();
        let day = Duration::from_secs(86_400);
        let team = who("carol", None, &[], &["team-a"]);
        let lifted = who("dave", None, &[], &["team-a", "embargo"]);
        let pi = who("erin", None, &[], &["team-a", "embargo", "pi"]);
        assert_eq!(r.embargo(None, "team-a/x"), Some(7 * day));
        assert_eq!(r.embargo(Some(&team), "team-a/x"), Some(7 * day));
        assert_eq!(r.embargo(Some(&lifted), "team-a/x"), None);
        assert_eq!(r.embargo(Some(&team), "team-a/slow"), Some(30 * day));
        assert_eq!(r.embargo(Some(&lifted), "team-a/slow"), Some(30 * day));
        assert_eq!(r.embargo(Some(&pi), "team-a/slow"), None);
        assert_eq!(r.embargo(Some(&team), "demo/a"), None);
    }

    #[test]
    fn bad_configs_name_the_culprit() {
        let bad = |cfg: RulesConfig, needle: &str| {
            let e = AccessRules::new(&cfg).err().unwrap_or_default();
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        };
        bad(RulesConfig { anonymous: strings(&["ok", "bad one"]), ..RulesConfig::default() }, "\"bad one\"");
        bad(RulesConfig { authenticated: strings(&[""]), ..RulesConfig::default() }, "authenticated");
        bad(
            RulesConfig {
                rules: vec![RuleConfig { datasets: strings(&["a"]), ..RuleConfig::default() }],
                ..RulesConfig::default()
            },
            "rule 1: grants to nobody",
        );
        bad(
            RulesConfig {
                rules: vec![RuleConfig { datasets: vec![], roles: strings(&["r"]), ..RuleConfig::default() }],
                ..RulesConfig::default()
            },
            "rule 1: no datasets",
        );
        for age in ["7D", "P", "PT", "P-1D", "P0D", "1 week", ""] {
            bad(
                RulesConfig {
                    embargo: vec![EmbargoConfig {
                        datasets: strings(&["a"]),
                        age: age.to_owned(),
                        role: "r".to_owned(),
                    }],
                    ..RulesConfig::default()
                },
                &format!("bad age {age:?}"),
            );
        }
        bad(
            RulesConfig {
                embargo: vec![EmbargoConfig {
                    datasets: strings(&["a"]),
                    age: "P1D".to_owned(),
                    role: " ".to_owned(),
                }],
                ..RulesConfig::default()
            },
            "empty role",
        );
    }

    #[test]
    fn toml_shape_is_strict() {
        let ok: Result<RulesConfig, _> = serde_json::from_value(serde_json::json!({
            "anonymous": ["demo/*"],
            "rule": [{"datasets": ["a/*"], "roles": ["r"]}],
            "embargo": [{"datasets": ["a/*"], "age": "P7D", "role": "e"}],
        }));
        assert!(ok.is_ok_and(|c| AccessRules::new(&c).is_ok()));
        let typo: Result<RulesConfig, _> = serde_json::from_value(serde_json::json!({"anonymus": ["x"]}));
        assert!(typo.is_err());
        let typo: Result<RulesConfig, _> =
            serde_json::from_value(serde_json::json!({"rule": [{"datasets": ["a"], "role": ["r"]}]}));
        assert!(typo.is_err());
    }
}
