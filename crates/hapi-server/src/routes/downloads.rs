//! `/downloads/...`: the client tools of the repository's `clients/` folder (the two
//! token helpers and the Python client module), public like SWE's portal downloads, with
//! this server's own addresses filled in as their defaults.
//!
//! The files are embedded from their one place in the repository, so `cargo build`
//! alone builds what is served and a download is the same file `pip` installs. Each
//! file names its defaults on lines of their own (`DEFAULT_TOKEN_URL = "..."`); only
//! those lines change.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{Access, Mode};
use crate::state::AppState;

/// The served files: URL name, contents, media type, and whether it is shell.
const FILES: [(&str, &str, &str, Lang); 3] = [
    (
        "get_hapi_access_token.sh",
        include_str!("../../../../clients/get_hapi_access_token.sh"),
        "text/x-shellscript; charset=utf-8",
        Lang::Shell,
    ),
    (
        "get_hapi_access_token.py",
        include_str!("../../../../clients/get_hapi_access_token.py"),
        "text/x-python; charset=utf-8",
        Lang::Python,
    ),
    (
        "swe_hapi.py",
        include_str!("../../../../clients/python/swe_hapi.py"),
        "text/x-python; charset=utf-8",
        Lang::Python,
    ),
];

/// The URL names of the files under `{prefix}/downloads/`, for the router and the landing page.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|f| f.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Shell,
    Python,
}

/// What a downloaded tool should use when the user gives nothing else.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    /// This server's HAPI base URL.
    pub(crate) server: String,
    /// Where tokens come from: the built-in issuer's endpoint, or the OpenID provider's
    /// (from its discovery document); none on an open server.
    pub(crate) token_url: Option<String>,
    /// The scope the server requires, if any.
    pub(crate) scope: Option<String>,
}

pub(crate) fn defaults(access: &Access) -> Defaults {
    let site = &access.site;
    let (token_url, scope) = match &access.mode {
        Mode::Open => (None, None),
        Mode::Builtin(b) => (Some(site.url("/oauth/token")), b.validator.config().required_scope.clone()),
        Mode::Oidc(o) => (
            o.validator.discovery().and_then(|d| d["token_endpoint"].as_str()).map(str::to_owned),
            o.validator.config().required_scope.clone(),
        ),
    };
    Defaults { server: site.url("/hapi"), token_url, scope }
}

/// `text` with each `NAME = ...` (Python) or `NAME=...` (shell) line of `values`
/// replaced by the value, quoted for the language. A value of `None` keeps the line.
fn fill(text: &str, lang: Lang, values: &[(&str, Option<&str>)]) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let replaced = values.iter().find_map(|(name, value)| {
            let value = (*value)?;
            let lead = match lang {
                Lang::Shell => format!("{name}="),
                Lang::Python => format!("{name} = "),
            };
            line.starts_with(&lead).then(|| match lang {
                // Single quotes take everything literally but themselves.
                Lang::Shell => format!("{lead}'{}'\n", value.replace('\'', r"'\''")),
                // A JSON string is a valid Python string literal.
                Lang::Python => format!("{lead}{}\n", serde_json::Value::from(value)),
            })
        });
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

/// The file `name` as this server serves it.
fn render(access: &Access, name: &str) -> Option<(String, &'static str)> {
    let (_, text, media, lang) = FILES.iter().find(|f| f.0 == name)?;
    let d = defaults(access);
    // On an open server there is no token endpoint: the default becomes empty, and the
    // tools then ask for one instead of trying the repository's example address.
    let token_url = Some(d.token_url.as_deref().unwrap_or(""));
    let values = [
        ("DEFAULT_TOKEN_URL", token_url),
        ("DEFAULT_SCOPE", d.scope.as_deref()),
        ("DEFAULT_SERVER", Some(d.server.as_str())),
    ];
    Some((fill(text, *lang, &values), media))
}

/// `GET {prefix}/downloads/{name}`: the file as an attachment.
pub(crate) async fn serve(State(st): State<Arc<AppState>>, name: &'static str) -> Response {
    let Some((body, media)) = render(&st.access, name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::{FILES, Lang, fill};
    use crate::app::App;
    use crate::config::{self, Overrides};

    /// Every default line the server fills in is in the files, once each.
    #[test]
    fn every_file_names_its_defaults() {
        for (name, text, _, lang) in FILES {
            let sep = if lang == Lang::Shell { "=" } else { " = " };
            let count = |n: &str| text.lines().filter(|l| l.starts_with(&format!("{n}{sep}"))).count();
            assert_eq!(count("DEFAULT_TOKEN_URL"), 1, "{name}");
            assert_eq!(count("DEFAULT_SCOPE"), 1, "{name}");
            assert_eq!(count("DEFAULT_SERVER"), usize::from(name == "swe_hapi.py"), "{name}");
        }
    }

    #[test]
    fn values_are_quoted_for_their_language() {
        let sh = fill("A='x'\nB=1\n", Lang::Shell, &[("A", Some("it's"))]);
        assert_eq!(sh, "A='it'\\''s'\nB=1\n");
        let py = fill("A = \"x\"\nAB = 1\n", Lang::Python, &[("A", Some("a\"b\\c"))]);
        assert_eq!(py, "A = \"a\\\"b\\\\c\"\nAB = 1\n");
    }

    /// A catalog needs a dataset; it comes after the configuration's own tables.
    const DATASET: &str = r#"
[[dataset]]
id = "d"
title = "d"
info = '''{"parameters":[{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24}],
  "startDate":"2020-01-01Z","stopDate":"2020-01-02Z"}'''
"#;

    async fn get(config: &str, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let dir = tempfile::tempdir().unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:9999".into()),
            ..Default::default()
        };
        let config = format!("{config}{DATASET}");
        let config = config::load(&config, Path::new("."), &overrides).unwrap();
        let store = Arc::new(hapi_store::MemoryStore::new());
        let app = App::build(&config, store).await.unwrap();
        let r = crate::routes::app(app.state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Public (no token on a protected server), under the prefix, with the built-in
    /// issuer's token endpoint and scope and the server's HAPI URL as the defaults.
    #[tokio::test]
    async fn downloads_are_public_and_name_this_server() {
        let with = |extra: &str| {
            format!(
                "path_prefix = \"/p\"\n[auth]\npublic_url = \"https://hapi.test\"\n{extra}\
                 [auth.issuer]\nscope = \"my_scope\"\n"
            )
        };
        let cfg = &with("");
        let (status, h, body) = get(cfg, "/p/downloads/get_hapi_access_token.sh").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h["content-type"], "text/x-shellscript; charset=utf-8");
        assert_eq!(h["content-disposition"], "attachment; filename=\"get_hapi_access_token.sh\"");
        assert!(body.starts_with("#!/usr/bin/env bash\n"));
        assert!(body.contains("\nDEFAULT_TOKEN_URL='https://hapi.test/p/oauth/token'\n"), "{body}");
        assert!(body.contains("\nDEFAULT_SCOPE='my_scope'\n"));

        let (status, h, body) = get(cfg, "/p/downloads/get_hapi_access_token.py").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h["content-type"], "text/x-python; charset=utf-8");
        assert!(body.contains("\nDEFAULT_TOKEN_URL = \"https://hapi.test/p/oauth/token\"\n"));
        assert!(body.contains("\nDEFAULT_SCOPE = \"my_scope\"\n"));

        let (status, h, body) = get(cfg, "/p/downloads/swe_hapi.py").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h["content-disposition"], "attachment; filename=\"swe_hapi.py\"");
        assert!(body.contains("\nDEFAULT_SERVER = \"https://hapi.test/p/hapi\"\n"));
        assert!(body.contains("\nDEFAULT_TOKEN_URL = \"https://hapi.test/p/oauth/token\"\n"));
        assert!(body.contains("class HapiClient"));

        // The rest of the server still wants a token, and nothing is served without the prefix.
        assert_eq!(get(cfg, "/p/hapi/catalog").await.0, StatusCode::UNAUTHORIZED);
        assert_ne!(get(cfg, "/downloads/swe_hapi.py").await.0, StatusCode::OK);
        assert_ne!(get(cfg, "/p/downloads/other.py").await.0, StatusCode::OK);
        // The landing page links them.
        let (_, _, page) = get(&with("public_paths = [\"/hapi\"]\n"), "/p/hapi").await;
        for name in super::names() {
            assert!(page.contains(&format!("href=\"/p/downloads/{name}\"")), "{name}: {page}");
        }
    }

    /// An open server has no token endpoint: the default is empty, not the example address.
    #[tokio::test]
    async fn open_servers_give_no_token_endpoint() {
        let (status, _, body) = get("[auth]\nmode = \"open\"\n", "/downloads/get_hapi_access_token.sh").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\nDEFAULT_TOKEN_URL=''\n"), "{body}");
        assert!(body.contains("\nDEFAULT_SCOPE='swe_hapiserver'\n"), "the file's own default stays");
        let (_, _, body) = get("[auth]\nmode = \"open\"\n", "/downloads/swe_hapi.py").await;
        assert!(body.contains("\nDEFAULT_SERVER = \"http://127.0.0.1:9999/hapi\"\n"), "{body}");
    }
}
