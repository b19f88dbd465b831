//! docker-compose.yml cannot be run here (no Docker engine), so it is
//! checked against the binary: every tern service runs a real subcommand,
//! every TERN_* variable it sets is the env var of a flag of that
//! subcommand, and every required flag is given.

use std::collections::BTreeMap;

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

/// A mapping with YAML merge keys (`<<: *anchor`) applied; explicit keys win.
fn merged(y: &Yaml) -> BTreeMap<String, Yaml> {
    let mut out = BTreeMap::new();
    let Yaml::Hash(h) = y else { return out };
    if let Some(base) = h.get(&Yaml::String("<<".into())) {
        out.extend(merged(base));
    }
    for (k, v) in h {
        if let Some(k) = k.as_str().filter(|k| *k != "<<") {
            out.insert(k.to_owned(), v.clone());
        }
    }
    out
}

fn env_of(service: &BTreeMap<String, Yaml>) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Yaml::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        Some(h @ Yaml::Hash(_)) => merged(h)
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Yaml::String(s) => s,
                    other => format!("{other:?}"),
                };
                (k, v)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[test]
fn every_variable_in_docker_compose_is_a_flag_of_the_binary_it_starts() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml at the repository root");
    let doc = &YamlLoader::load_from_str(&text).expect("valid YAML")[0];
    let services = merged(&doc["services"]);
    let cli = tern::cli::Cli::command();
    let mut tern_services = BTreeMap::new();
    for (name, svc) in &services {
        let svc = merged(svc);
        if !svc.contains_key("build") {
            continue; // mysql, redis, nats images
        }
        let Some(Yaml::Array(cmd)) = svc.get("command") else {
            panic!("{name}: a tern service names its subcommand in `command`")
        };
        let sub = cmd[0].as_str().expect("subcommand");
        let sub_cmd = cli
            .find_subcommand(sub)
            .unwrap_or_else(|| panic!("{name}: `tern {sub}` is not a subcommand"));
        let known: BTreeMap<String, bool> = sub_cmd
            .get_arguments()
            .filter_map(|a| Some((a.get_env()?.to_str()?.to_owned(), a.is_required_set())))
            .collect();
        let env = env_of(&svc);
        for var in env.keys() {
            assert!(
                known.contains_key(var),
                "{name}: {var} is not an env var of `tern {sub}` (known: {:?})",
                known.keys().collect::<Vec<_>>()
            );
        }
        for (var, required) in &known {
            assert!(
                !required || env.contains_key(var),
                "{name}: `tern {sub}` needs {var}"
            );
        }
        // The same values must parse as the binary would parse them.
        let args: Vec<String> = cmd
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        let parsed = sub_cmd.clone().no_binary_name(true).try_get_matches_from(
            args.iter().skip(1).chain(
                env.iter()
                    .filter_map(|(k, v)| {
                        let flag = sub_cmd
                            .get_arguments()
                            .find(|a| a.get_env().and_then(|e| e.to_str()) == Some(k))?
                            .get_long()?;
                        Some([format!("--{flag}"), v.clone()])
                    })
                    .flatten()
                    .collect::<Vec<_>>()
                    .iter(),
            ),
        );
        assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        tern_services.insert(name.clone(), sub.to_owned());
    }
    let count = |s: &str| tern_services.values().filter(|v| *v == s).count();
    assert_eq!(
        (count("logic"), count("connect")),
        (2, 2),
        "{tern_services:?}"
    );
    for image in ["mysql", "redis", "nats"] {
        assert!(services.contains_key(image), "{image} service");
    }
}
