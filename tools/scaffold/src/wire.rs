//! The edits a new service needs in the workspace: the registry, the workspace members, the
//! gateway's routes, the event contracts, the end-to-end tests, the README's services table,
//! and the processes of the configuration reference (`tools/docs`; the reference itself is
//! generated from the compiled code, by `make docs`).

use anyhow::{Context as _, bail};
use platform_registry::{Registry, SERVICES_DOCUMENTS};

use crate::edits::append;
use crate::{Edits, NewService};

/// The test that generates the configuration reference, and the crate it is in.
const DOCS_PROCESSES: &str = "tools/docs/tests/configuration.rs";
const DOCS_MANIFEST: &str = "tools/docs/Cargo.toml";

/// The line of [`DOCS_PROCESSES`] a new service's entry goes above.
const DOCS_ANCHOR: &str = "// A new service goes above this line";

/// Plans the workspace edits for `service`.
pub fn plan(edits: &mut Edits, service: &NewService) -> anyhow::Result<()> {
    let crate_dir = format!("services/{}", service.name);
    if edits.exists(&crate_dir) {
        bail!("{crate_dir} already exists: choose another name, or remove it first");
    }
    edits.edit("services.toml", |text| {
        Ok(append(text, &service.registry_entry()))
    })?;
    edits.edit("Cargo.toml", |text| members(text, &crate_dir))?;
    edits.edit("gateway/routes.default.toml", |text| {
        Ok(append(text, &routes(service)))
    })?;
    if let (Some(domain), Some(event)) = (service.events_domain(), service.emits.first()) {
        let type_name = event.type_name();
        edits.edit("libs/contracts/src/lib.rs", |text| {
            contracts(text, domain, &event.to_string(), &type_name)
        })?;
    }
    edits.edit("host/tests/e2e/main.rs", |text| {
        insert_sorted(
            text,
            "mod ",
            &service.name,
            &format!("mod {};\n", service.name),
        )
    })?;
    edits.edit(DOCS_MANIFEST, |text| {
        crate::deploy::service_dev_dependency(text, service)
    })?;
    edits.edit(DOCS_PROCESSES, |text| documented_process(text, service))?;
    let registry = Registry::parse(&edits.read("services.toml")?)
        .map_err(|error| anyhow::anyhow!("services.toml, with the new entry: {error}"))?;
    let table = registry.services_table();
    for document in SERVICES_DOCUMENTS {
        edits.edit(document, |text| services_table(text, &table))?;
    }
    Ok(())
}

/// The workspace's `members` with the crate added after the last service.
fn members(text: &str, crate_dir: &str) -> anyhow::Result<String> {
    let line = format!("    \"{crate_dir}\",\n");
    let start = text
        .find("members = [\n")
        .context("no `members = [` list")?;
    let end = text[start..]
        .find("]\n")
        .context("the members list has no end")?
        + start;
    let last_service = text[start..end]
        .rfind("    \"services/")
        .map(|at| at + start);
    match last_service {
        Some(at) => {
            let after = text[at..].find('\n').context("a members line")? + at + 1;
            Ok(format!("{}{line}{}", &text[..after], &text[after..]))
        }
        None => Ok(format!("{}{line}{}", &text[..end], &text[end..])),
    }
}

/// Reads through the gateway (`read` limits), writes (`write` limits); both need a user.
fn routes(service: &NewService) -> String {
    let (resource, upstream) = (&service.resource, &service.name);
    format!(
        "\n[[route]]\nname = \"{resource}-read\"\npath = \"/api/v1/{resource}\"\n\
         methods = [\"GET\", \"HEAD\"]\nupstream = \"{upstream}\"\nauth = \"user\"\n\
         rate_limit = \"read\"\n\n[[route]]\nname = \"{resource}-write\"\n\
         path = \"/api/v1/{resource}\"\nupstream = \"{upstream}\"\nauth = \"user\"\n\
         rate_limit = \"write\"\n"
    )
}

/// `libs/contracts/src/lib.rs` with the new domain's module, export and doc line, each where
/// rustfmt would put it.
fn contracts(text: &str, domain: &str, event: &str, type_name: &str) -> anyhow::Result<String> {
    let doc_end = text
        .find("\n\nmod ")
        .context("no module list after the crate's documentation")?;
    let text = format!(
        "{}\n//! - `{domain}`: `{event}`.{}",
        &text[..doc_end],
        &text[doc_end..]
    );
    let text = insert_sorted(&text, "mod ", domain, &format!("mod {domain};\n"))?;
    insert_sorted(
        &text,
        "pub use ",
        domain,
        &format!("pub use {domain}::{type_name};\n"),
    )
}

/// `text` with `line` inserted among the first run of top-level lines starting with `prefix`
/// (`mod `, `pub use `), before the first whose name (what follows the prefix) sorts after
/// `name`, or after the run's last statement.
fn insert_sorted(text: &str, prefix: &str, name: &str, line: &str) -> anyhow::Result<String> {
    let starts: Vec<usize> = text
        .match_indices(prefix)
        .map(|(at, _)| at)
        .filter(|&at| at == 0 || text.as_bytes()[at - 1] == b'\n')
        .filter(|&at| {
            // A statement (`mod x;`, `pub use x::...;`), not an inline module.
            let rest = &text[at + prefix.len()..];
            let word_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            !rest[word_end..].trim_start().starts_with('{') || prefix != "mod "
        })
        .collect();
    let first = *starts
        .first()
        .with_context(|| format!("no `{}` line", prefix.trim_end()))?;
    for &at in &starts {
        let rest = &text[at + prefix.len()..];
        let word_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if &rest[..word_end] > name {
            return Ok(format!("{}{line}{}", &text[..at], &text[at..]));
        }
    }
    let last = *starts.last().unwrap_or(&first);
    let end = text[last..]
        .find(";\n")
        .with_context(|| format!("an unterminated `{}` statement", prefix.trim_end()))?
        + last
        + 2;
    Ok(format!("{}{line}{}", &text[..end], &text[end..]))
}

/// The configuration reference's processes with the service's, above [`DOCS_ANCHOR`].
fn documented_process(text: &str, service: &NewService) -> anyhow::Result<String> {
    let at = text
        .find(DOCS_ANCHOR)
        .with_context(|| format!("no `{DOCS_ANCHOR}` line to add the service above"))?;
    let line_start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
    let indent = &text[line_start..at];
    Ok(format!(
        "{}{indent}Process::service::<{}::Config>(\"{}\"),\n{}",
        &text[..line_start],
        service.crate_ident,
        service.binary,
        &text[line_start..]
    ))
}

/// `text` with its generated services table replaced by `table`.
fn services_table(text: &str, table: &str) -> anyhow::Result<String> {
    let range = platform_registry::services_table_in(text).map_err(anyhow::Error::msg)?;
    let mut text = text.to_owned();
    text.replace_range(range, table);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Answers;

    fn courier() -> NewService {
        NewService::plan(
            &Answers {
                name: "courier".into(),
                store: "postgres".into(),
                emits: "deliveries.made".into(),
                consumes: "orders.confirmed".into(),
                // Not the next free port: a platform that added services keeps passing.
                http_port: "8186".into(),
                ..Answers::default()
            },
            platform_registry::SOURCE,
        )
        .unwrap()
    }

    fn root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn the_workspace_edits_add_the_service_everywhere_it_is_listed() {
        let mut edits = Edits::new(root());
        plan(&mut edits, &courier()).unwrap();

        let registry = Registry::parse(edits.pending("services.toml").unwrap()).unwrap();
        let entry = registry.services.last().unwrap();
        assert_eq!(entry.name, "courier");
        assert_eq!(entry.http_port, 8186);
        assert_eq!(entry.events.as_deref(), Some("deliveries"));
        assert_eq!(entry.consumes, ["orders"]);
        let cargo = edits.pending("Cargo.toml").unwrap();
        assert!(
            cargo.contains("\"services/notification\",\n    \"services/")
                && cargo.contains("    \"services/courier\",\n")
        );
        let routes = edits.pending("gateway/routes.default.toml").unwrap();
        assert!(
            routes.ends_with("upstream = \"courier\"\nauth = \"user\"\nrate_limit = \"write\"\n")
        );
        let contracts = edits.pending("libs/contracts/src/lib.rs").unwrap();
        assert!(contracts.contains("\nmod deliveries;\n"), "{contracts}");
        assert!(
            contracts.contains("\npub use deliveries::DeliveryMade;\n"),
            "{contracts}"
        );
        assert!(contracts.contains("//! - `deliveries`: `deliveries.made`.\n"));
        assert!(
            edits
                .pending("host/tests/e2e/main.rs")
                .unwrap()
                .contains("\nmod courier;\n")
        );
        for document in SERVICES_DOCUMENTS {
            assert!(
                edits.pending(document).unwrap().contains(
                    "| [courier](services/courier/README.md) | 8186 | — | PostgreSQL `deliveries` | `deliveries.*` | `orders.*` | — |\n"
                ),
                "{}",
                edits.pending(document).unwrap()
            );
        }
    }

    #[test]
    fn the_service_is_added_to_the_configuration_reference_s_processes() {
        let read = |path: &str| std::fs::read_to_string(root().join(path)).unwrap();
        let processes = documented_process(&read(DOCS_PROCESSES), &courier()).unwrap();
        assert!(
            processes.contains(
                "\n        Process::service::<courier_service::Config>(\"courier-service\"),\n        \
                 // A new service goes above this line"
            ),
            "{processes}"
        );
        let manifest =
            crate::deploy::service_dev_dependency(&read(DOCS_MANIFEST), &courier()).unwrap();
        assert!(
            manifest.contains("\ncourier-service = { path = \"../../services/courier\" }\n"),
            "{manifest}"
        );

        let mut edits = Edits::new(root());
        let text = read(DOCS_PROCESSES);
        edits.write(DOCS_PROCESSES, text.replace(DOCS_ANCHOR, "// elsewhere"));
        let error = format!("{:#}", plan(&mut edits, &courier()).unwrap_err());
        assert!(error.contains(DOCS_PROCESSES), "{error}");
        assert!(error.contains(DOCS_ANCHOR), "{error}");
    }

    #[test]
    fn clashes_and_taken_ports_are_refused_before_any_edit() {
        let refuse = |answers: Answers| {
            NewService::plan(&answers, platform_registry::SOURCE)
                .unwrap_err()
                .to_string()
        };
        let named = |name: &str| Answers {
            name: name.into(),
            ..Answers::default()
        };
        assert!(refuse(named("payment")).contains("already exists"));
        assert!(refuse(named("Courier")).contains("not a valid service name"));
        assert!(refuse(named("ship-ping")).contains("not a valid service name"));
        assert!(refuse(named("type")).contains("reserved"));
        let taken = refuse(Answers {
            http_port: "8083".into(),
            ..named("courier")
        });
        assert!(taken.contains("HTTP port 8083 is already taken"), "{taken}");
        let theirs = refuse(Answers {
            emits: "orders.shipped".into(),
            ..named("courier")
        });
        assert!(theirs.contains("already published by `order`"), "{theirs}");
        let nobody = refuse(Answers {
            consumes: "parcels.lost".into(),
            ..named("courier")
        });
        assert!(
            nobody.contains("no service publishes `parcels`"),
            "{nobody}"
        );
        let malformed = refuse(Answers {
            consumes: "orders".into(),
            ..named("courier")
        });
        assert!(malformed.contains("not an event type"), "{malformed}");
    }
}
