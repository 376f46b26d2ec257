//! The settings as their source declares them: each field's name as serde reads it, its doc
//! comment, whether it is required, and what it holds (a section, a map, a value).
//!
//! Read with `syn` from the files, so that the names are serde's (`rename`, `rename_all`,
//! `flatten`, `skip`) and the meanings are the `///` comments a reader of the code sees. Any
//! other serde attribute is refused by name: it could change what a variable is called, and a
//! reference that guesses is worse than none.

use std::collections::BTreeMap;
use std::path::Path;

use syn::{Attribute, Fields, GenericArgument, Item, LitStr, PathArguments, Type};

/// The position of a map's key in a variable name: `GATEWAY__UPSTREAMS__{NAME}`.
pub const MAP_KEY: &str = "{NAME}";

/// The structs and enums of some source files, by name (the first file declaring a name wins).
#[derive(Default)]
pub struct Sources {
    items: BTreeMap<String, Declared>,
}

enum Declared {
    Struct(syn::ItemStruct),
    Enum(syn::ItemEnum),
}

/// What one setting holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value of this type (`u64`, `String`, `Secret`, ...).
    Value(String),
    /// One of these variants (their serde names).
    OneOf(Vec<String>),
}

/// One variable's worth of setting: a leaf of the settings' tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Its keys, serde's names from the root ([`MAP_KEY`] where a map's key goes).
    pub path: Vec<String>,
    /// Its doc comment, whitespace collapsed to single spaces.
    pub doc: String,
    /// Every key of the path is required: loading fails without it.
    pub required: bool,
    /// The optional section (`Option<Struct>`) it sits in, if any, and whether it is required
    /// once that section is given.
    pub optional_section: Option<(Vec<String>, bool)>,
    /// What it holds.
    pub kind: Kind,
}

impl Sources {
    /// Parses `files`, each `(name for messages, text)`.
    pub fn parse<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut sources = Self::default();
        for (name, text) in files {
            let file = syn::parse_file(text).map_err(|error| format!("{name}: {error}"))?;
            for item in file.items {
                let (ident, declared) = match item {
                    Item::Struct(item) => (item.ident.to_string(), Declared::Struct(item)),
                    Item::Enum(item) => (item.ident.to_string(), Declared::Enum(item)),
                    _ => continue,
                };
                sources.items.entry(ident).or_insert(declared);
            }
        }
        Ok(sources)
    }

    /// Reads and parses the files at `paths`, relative to `root`.
    pub fn read(root: &Path, paths: &[String]) -> Result<Self, String> {
        let texts = paths
            .iter()
            .map(|path| {
                std::fs::read_to_string(root.join(path))
                    .map(|text| (path.as_str(), text))
                    .map_err(|error| format!("reading {path}: {error}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::parse(texts.iter().map(|(path, text)| (*path, text.as_str())))
    }

    /// Every setting of the struct `root`, in declaration order. Fields without a doc comment
    /// are named in the error, all of them at once.
    pub fn settings(&self, root: &str) -> Result<Vec<Setting>, String> {
        let mut walk = Walk::default();
        let root_context = Context {
            required: true,
            ..Context::default()
        };
        walk.section(self, root, &root_context)?;
        if walk.undocumented.is_empty() {
            Ok(walk.settings)
        } else {
            Err(format!(
                "these settings have no `///` doc comment saying what they mean: {}",
                walk.undocumented.join(", ")
            ))
        }
    }
}

/// Where the walk stands: the keys so far, and what the sections above imply.
#[derive(Clone, Default)]
struct Context {
    path: Vec<String>,
    required: bool,
    optional_section: Option<(Vec<String>, bool)>,
}

#[derive(Default)]
struct Walk {
    settings: Vec<Setting>,
    undocumented: Vec<String>,
}

/// What serde's attributes on a field or container say.
#[derive(Default)]
struct Serde {
    default: bool,
    rename: Option<String>,
    rename_all: Option<String>,
    flatten: bool,
    skip: bool,
}

impl Walk {
    fn section(&mut self, sources: &Sources, name: &str, at: &Context) -> Result<(), String> {
        let Some(Declared::Struct(item)) = sources.items.get(name) else {
            return Err(format!("no struct `{name}` in the files read"));
        };
        let container = serde_attributes(&item.attrs, name)?;
        let Fields::Named(fields) = &item.fields else {
            return Err(format!("`{name}` has no named fields"));
        };
        for field in &fields.named {
            let ident = field.ident.as_ref().map(ToString::to_string);
            let ident = ident.unwrap_or_default();
            let what = format!("{name}.{ident}");
            let serde = serde_attributes(&field.attrs, &what)?;
            if serde.skip {
                continue;
            }
            let (optional, ty) = match generic_of(&field.ty, "Option") {
                Some(inner) => (true, inner),
                None => (false, &field.ty),
            };
            if serde.flatten {
                let inner =
                    type_name(ty).ok_or(format!("`{what}`: flattened, but not a struct"))?;
                self.section(sources, &inner, at)?;
                continue;
            }
            let key = match serde.rename {
                Some(rename) => rename,
                None => renamed(&ident, container.rename_all.as_deref(), &what)?,
            };
            if key != key.to_lowercase() {
                return Err(format!(
                    "`{what}` is read as `{key}`, which no variable can set (the keys of \
                     variables are lower-cased)"
                ));
            }
            let doc = doc_comment(&field.attrs);
            if doc.is_empty() {
                self.undocumented.push(format!("`{what}`"));
            }
            let required_here = !(optional || serde.default || container.default);
            let mut path = at.path.clone();
            path.push(key);
            let mut optional_section = at
                .optional_section
                .clone()
                .map(|(section, required)| (section, required && required_here));
            let mut inner = ty;
            let mut map = false;
            if let Some(value) = generic_of(ty, "BTreeMap").or_else(|| generic_of(ty, "HashMap")) {
                path.push(MAP_KEY.to_owned());
                inner = value;
                map = true;
            }
            let inner_name = type_name(inner).unwrap_or_default();
            match sources.items.get(&inner_name) {
                // A struct of named fields is a section; a newtype (`Secret`) is one value.
                Some(Declared::Struct(item)) if matches!(item.fields, Fields::Named(_)) => {
                    if optional && optional_section.is_none() {
                        optional_section = Some((path.clone(), true));
                    }
                    let context = Context {
                        path,
                        required: at.required && required_here && !map,
                        optional_section,
                    };
                    self.section(sources, &inner_name, &context)?;
                }
                declared => {
                    if inner_name == "Vec" {
                        return Err(format!(
                            "`{what}` is a list, which no variable can set (the variables are \
                             read without a list separator)"
                        ));
                    }
                    let kind = match declared {
                        Some(Declared::Enum(item)) => Kind::OneOf(variants(item)?),
                        _ => Kind::Value(inner_name),
                    };
                    self.settings.push(Setting {
                        path,
                        doc,
                        required: at.required && required_here && !map,
                        optional_section,
                        kind,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The serde names of an enum's unit variants.
fn variants(item: &syn::ItemEnum) -> Result<Vec<String>, String> {
    let name = item.ident.to_string();
    let container = serde_attributes(&item.attrs, &name)?;
    item.variants
        .iter()
        .map(|variant| {
            let what = format!("{name}::{}", variant.ident);
            if !matches!(variant.fields, Fields::Unit) {
                return Err(format!("`{what}` holds data, which no variable can set"));
            }
            let serde = serde_attributes(&variant.attrs, &what)?;
            match serde.rename {
                Some(rename) => Ok(rename),
                None => renamed(
                    &variant.ident.to_string(),
                    container.rename_all.as_deref(),
                    &what,
                ),
            }
        })
        .collect()
}

/// The `///` lines of an item, as one line.
pub fn doc_comment(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(pair) => match &pair.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let line = lines
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    without_intra_doc_links(&line)
}

/// Rustdoc's links to items (``[`default_upstreams`]``) as plain code: Markdown would show the
/// brackets. Links with a target (`[text](url)`) stay.
fn without_intra_doc_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let Some(end) = rest[start + 2..].find("`]").map(|at| start + 2 + at) else {
            break;
        };
        let after = &rest[end + 2..];
        out.push_str(&rest[..start]);
        if after.starts_with('(') || after.starts_with('[') {
            out.push_str(&rest[start..end + 2]);
        } else {
            out.push_str(&rest[start + 1..=end]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn serde_attributes(attrs: &[Attribute], what: &str) -> Result<Serde, String> {
    let mut serde = Serde::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let word = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match word.as_str() {
                "default" => {
                    serde.default = true;
                    if meta.input.peek(syn::Token![=]) {
                        meta.value()?.parse::<LitStr>()?;
                    }
                }
                "rename" => serde.rename = Some(meta.value()?.parse::<LitStr>()?.value()),
                "rename_all" => serde.rename_all = Some(meta.value()?.parse::<LitStr>()?.value()),
                "flatten" => serde.flatten = true,
                "skip" | "skip_deserializing" => serde.skip = true,
                // Neither changes which variables are read.
                "deny_unknown_fields" | "skip_serializing" => {}
                _ => {
                    return Err(meta.error(format!(
                        "`#[serde({word})]` on `{what}`: the configuration reference does not \
                         know what variables it implies; teach tools/docs/src/source.rs"
                    )));
                }
            }
            Ok(())
        })
        .map_err(|error| error.to_string())?;
    }
    Ok(serde)
}

/// `ident` as `#[serde(rename_all = rule)]` names it (the rules that keep names readable as
/// variables, and those an enum's values use).
fn renamed(ident: &str, rule: Option<&str>, what: &str) -> Result<String, String> {
    let words = || -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        for part in ident.split('_').filter(|part| !part.is_empty()) {
            let mut word = String::new();
            for c in part.chars() {
                if c.is_uppercase() && !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.extend(c.to_lowercase());
            }
            words.push(word);
        }
        words
    };
    Ok(match rule {
        None => ident.to_owned(),
        Some("lowercase") => ident.to_lowercase(),
        Some("UPPERCASE") => ident.to_uppercase(),
        Some("snake_case") => words().join("_"),
        Some("SCREAMING_SNAKE_CASE") => words().join("_").to_uppercase(),
        Some("kebab-case") => words().join("-"),
        Some(rule) => {
            return Err(format!(
                "`#[serde(rename_all = \"{rule}\")]` on `{what}`: not a rule tools/docs knows"
            ));
        }
    })
}

/// `T` of `Wrapper<T>` (the last argument: a map's value).
fn generic_of<'a>(ty: &'a Type, wrapper: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().rev().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// The last segment of a type's path: `Secret` for `platform_config::Secret`.
fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => path.path.segments.last().map(|last| last.ident.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        /// Not a setting: the container's doc.
        #[derive(Deserialize)]
        pub struct Config {
            /// The database
            /// (required).
            pub database: Database,
            /// The   listener.
            #[serde(default)]
            pub http: Http,
            /// Who runs things.
            #[serde(default, rename = "admin")]
            pub bootstrap_admin: Option<Admin>,
            /// Upstreams by name.
            #[serde(default)]
            pub upstreams: BTreeMap<String, String>,
            #[serde(flatten)]
            pub extra: Extra,
            #[serde(skip)]
            pub cache: Cache,
        }

        #[derive(Deserialize)]
        pub struct Database {
            /// Its URL.
            pub url: Secret,
            /// Pool size.
            #[serde(default = "ten")]
            pub max_connections: u32,
        }

        #[derive(Deserialize)]
        #[serde(default, rename_all = "snake_case")]
        pub struct Http {
            /// Its port.
            pub port: Option<u16>,
            /// How it logs.
            pub logFormat: Format,
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Format { Json, Pretty }

        #[derive(Deserialize)]
        pub struct Admin {
            /// Their email.
            pub email: String,
            /// Their password.
            #[serde(default)]
            pub password: Option<Secret>,
        }

        #[derive(Deserialize)]
        #[serde(default)]
        pub struct Extra {
            /// Beside the rest.
            pub region: String,
        }
    "#;

    fn setting(path: &str, doc: &str, required: bool, kind: Kind) -> Setting {
        Setting {
            path: path.split('.').map(str::to_owned).collect(),
            doc: doc.to_owned(),
            required,
            optional_section: None,
            kind,
        }
    }

    #[test]
    fn names_docs_and_required_come_from_the_declarations_as_serde_reads_them() {
        let sources = Sources::parse([("sample.rs", SAMPLE)]).unwrap();
        let settings = sources.settings("Config").unwrap();
        let value = |ty: &str| Kind::Value(ty.to_owned());
        let in_admin = |required| Some((vec!["admin".to_owned()], required));
        assert_eq!(
            settings,
            [
                setting("database.url", "Its URL.", true, value("Secret")),
                setting(
                    "database.max_connections",
                    "Pool size.",
                    false,
                    value("u32")
                ),
                setting("http.port", "Its port.", false, value("u16")),
                setting(
                    "http.log_format",
                    "How it logs.",
                    false,
                    Kind::OneOf(vec!["json".into(), "pretty".into()])
                ),
                Setting {
                    optional_section: in_admin(true),
                    ..setting("admin.email", "Their email.", false, value("String"))
                },
                Setting {
                    optional_section: in_admin(false),
                    ..setting("admin.password", "Their password.", false, value("Secret"))
                },
                setting(
                    "upstreams.{NAME}",
                    "Upstreams by name.",
                    false,
                    value("String")
                ),
                setting("region", "Beside the rest.", false, value("String")),
            ]
        );
    }

    #[test]
    fn a_doc_comment_is_read_as_one_line() {
        let file = syn::parse_file(
            "/// First line,\n///   second   line.\n#[derive(Debug)]\n/// Third: [`Item`],\n\
             /// [`linked`](https://example.com).\nstruct S;",
        )
        .unwrap();
        let Item::Struct(item) = &file.items[0] else {
            panic!("a struct")
        };
        assert_eq!(
            doc_comment(&item.attrs),
            "First line, second line. Third: `Item`, [`linked`](https://example.com)."
        );
    }

    #[test]
    fn every_setting_without_a_doc_comment_is_named() {
        let source = "struct Config { #[serde(default)] http: Http, /// Documented.\n a: u8 }\n\
                      struct Http { port: u16, /// Documented.\n host: String }";
        let error = Sources::parse([("x.rs", source)])
            .unwrap()
            .settings("Config")
            .unwrap_err();
        assert_eq!(
            error,
            "these settings have no `///` doc comment saying what they mean: `Config.http`, \
             `Http.port`"
        );
    }

    #[test]
    fn a_serde_attribute_the_reader_does_not_know_is_refused() {
        let source = "struct Config { /// A.\n #[serde(with = \"humantime\")] a: Duration }";
        let error = Sources::parse([("x.rs", source)])
            .unwrap()
            .settings("Config")
            .unwrap_err();
        assert!(error.contains("`#[serde(with)]` on `Config.a`"), "{error}");
        let source = "struct Config { /// A.\n #[serde(rename = \"A\")] a: u8 }";
        let error = Sources::parse([("x.rs", source)])
            .unwrap()
            .settings("Config")
            .unwrap_err();
        assert!(error.contains("which no variable can set"), "{error}");
    }
}
