//! `infra/functions.json` lists, per function, the environment variables its `Config::from_env`
//! reads (the crates' `config::VARIABLES`); the template check (`infra/check_env.py`, part of
//! `make validate`) compares that file with what `template.yaml` gives each function, so the
//! template can neither omit a variable the code needs nor set one the code never reads.
//! `KEFU_BLESS=1` rewrites the file after a deliberate change.

fn document() -> String {
    let doc = serde_json::json!({
        "IngressFunction": ingress::config::VARIABLES,
        "ProcessorFunction": processor::config::VARIABLES,
        "SenderFunction": sender::config::VARIABLES,
        "DeskFunction": desk::config::VARIABLES,
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap();
    out.push('\n');
    out
}

#[test]
fn infra_functions_json_lists_what_each_config_reads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/functions.json");
    let want = document();
    if std::env::var_os("KEFU_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "infra/functions.json differs from the functions' config::VARIABLES; run \
         `KEFU_BLESS=1 cargo nextest run -p integration-tests variables` and commit it"
    );
}
