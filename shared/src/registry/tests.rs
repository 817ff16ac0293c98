//! Tests of the registry: parsing per purpose, per-entry disabling, errors that name fields and
//! never values, and the split into verify and send parts.

use super::*;
use crate::protocol::ReceiveIdRule;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn doc(apps: &str, components: &str) -> String {
    format!(r#"{{"apps":[{apps}],"components":[{components}],"ignored":1}}"#)
}

#[test]
fn parses_apps_and_components_with_their_receive_id_rules() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"wx1","token":"t","encoding_aes_key":"{KEY}","app_secret":"s","extra":true}},
               {{"platform":"baidu","app_id":"123","token":"t","encoding_aes_key":"{KEY}","previous_encoding_aes_key":"{KEY}"}},
               {{"platform":"wechat","app_id":"wx2","original_id":"gh_2","component_app_id":"wxc"}}"#
        ),
        &format!(
            r#"{{"platform":"wechat","component_app_id":"wxc","token":"ct","encoding_aes_key":"{KEY}"}}"#
        ),
    );
    let r = AppRegistry::parse(&json).unwrap();
    let wx1 = r.app(Platform::Wechat, "wx1").unwrap();
    assert_eq!(
        wx1.credentials.as_ref().unwrap().receive_id,
        ReceiveIdRule::Exact("wx1".into())
    );
    assert_eq!(wx1.app_secret.as_ref().map(Secret::expose), Some("s"));
    let bd = r.app(Platform::Baidu, "123").unwrap();
    assert_eq!(
        bd.credentials.as_ref().unwrap().receive_id,
        ReceiveIdRule::Report
    );
    assert!(bd.credentials.as_ref().unwrap().previous_key.is_some());
    let wx2 = r.app(Platform::Wechat, "wx2").unwrap();
    assert_eq!(
        wx2.credentials.as_ref().unwrap().receive_id,
        ReceiveIdRule::Exact("wxc".into())
    );
    assert_eq!(wx2.credentials.as_ref().unwrap().token.expose(), "ct");
    assert!(r.app(Platform::Baidu, "wx1").is_none());
    assert!(
        !format!("{wx1:?}").contains("\"t\""),
        "secrets must not print"
    );
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            doc(
                r#"{"platform":"qq","app_id":"a","token":"t","encoding_aes_key":"x"}"#,
                "",
            ),
            "apps[0].platform",
        ),
        (
            doc(
                &format!(
                    r#"{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{}"}}"#,
                    &KEY[..42]
                ),
                "",
            ),
            "apps[0].encoding_aes_key",
        ),
        (
            doc(
                &format!(r#"{{"platform":"wechat","app_id":"a","encoding_aes_key":"{KEY}"}}"#),
                "",
            ),
            "apps[0].token",
        ),
        (
            doc(
                r#"{"platform":"wechat","app_id":"a","component_app_id":"nope"}"#,
                "",
            ),
            "apps[0].component_app_id",
        ),
        (
            doc(
                &format!(
                    r#"{{"platform":"baidu","app_id":"a","token":"t","encoding_aes_key":"{KEY}","default_user_type":3}}"#
                ),
                "",
            ),
            "apps[0].default_user_type",
        ),
        (
            doc(
                &format!(
                    r#"{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{KEY}"}},{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{KEY}"}}"#
                ),
                "",
            ),
            "apps[1].app_id",
        ),
        (
            doc(
                &format!(
                    r#"{{"platform":"wechat","app_id":"a","mode":"secure","token":"t","encoding_aes_key":"{KEY}"}}"#
                ),
                "",
            ),
            "apps[0].mode",
        ),
        (
            doc(
                &format!(
                    r#"{{"platform":"baidu","app_id":"a","mode":1,"token":"t","encoding_aes_key":"{KEY}"}}"#
                ),
                "",
            ),
            "apps[0].mode",
        ),
        (
            doc(
                r#"{"platform":"wechat","app_id":"a","original_id":"gh_a","component_app_id":"c","mode":"plaintext"}"#,
                &format!(
                    r#"{{"platform":"wechat","component_app_id":"c","token":"t","encoding_aes_key":"{KEY}"}}"#
                ),
            ),
            "apps[0].mode",
        ),
        (
            doc(
                r#"{"platform":"wechat","app_id":"a","component_app_id":"c"}"#,
                &format!(
                    r#"{{"platform":"wechat","component_app_id":"c","token":"t","encoding_aes_key":"{KEY}"}}"#
                ),
            ),
            "apps[0].original_id",
        ),
    ];
    for (json, field) in cases {
        match AppRegistry::parse(&json) {
            Err(RegistryError::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
            other => panic!("{json}: expected an error on {field}, got {other:?}"),
        }
    }
    assert!(matches!(
        AppRegistry::parse("{"),
        Err(RegistryError::Json(_))
    ));
}

const SECRET_MARK: &str = "s3cr3t-value-never-printed";

#[test]
fn an_invalid_entry_disables_only_its_app_and_names_the_field() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"good","token":"t","encoding_aes_key":"{KEY}"}},
               {{"platform":"wechat","app_id":"bad","token":"t","encoding_aes_key":"{SECRET_MARK}"}},
               {{"platform":"baidu","app_id":"typed","token":7,"encoding_aes_key":"{KEY}"}},
               {{"platform":"qq","app_id":"x"}}"#
        ),
        "",
    );
    let r = AppRegistry::parse_for(&json, Purpose::Verify).unwrap();
    assert!(matches!(
        r.lookup(Platform::Wechat, "good"),
        Lookup::Found(_)
    ));
    match r.lookup(Platform::Wechat, "bad") {
        Lookup::Disabled(e) => assert_eq!(e.field(), "apps[1].encoding_aes_key"),
        other => panic!("{other:?}"),
    }
    match r.lookup(Platform::Baidu, "typed") {
        Lookup::Disabled(e) => assert_eq!(e.field(), "apps[2].token"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        r.lookup(Platform::Wechat, "nope"),
        Lookup::Unknown
    ));
    let fields: Vec<&str> = r.invalid().iter().map(|e| e.error.field()).collect();
    assert_eq!(
        fields,
        [
            "apps[1].encoding_aes_key",
            "apps[2].token",
            "apps[3].platform"
        ]
    );
    assert_eq!(
        r.invalid()[3 - 1].app,
        None,
        "no app for an unknown platform"
    );
    for e in r.invalid() {
        assert!(!e.error.to_string().contains(SECRET_MARK), "{}", e.error);
    }
    // The strict parse refuses the document; `check` lists every error.
    assert_eq!(
        AppRegistry::parse(&json).unwrap_err().field(),
        "apps[1].encoding_aes_key"
    );
    let checked = AppRegistry::check(&json);
    let first: Vec<&str> = checked.iter().take(3).map(RegistryError::field).collect();
    assert_eq!(
        first,
        [
            "apps[1].encoding_aes_key",
            "apps[2].token",
            "apps[3].platform"
        ]
    );
}

#[test]
fn json_errors_do_not_quote_the_document() {
    let e = AppRegistry::parse(&format!(r#"{{"apps":[{{"token":"{SECRET_MARK}"#)).unwrap_err();
    assert!(matches!(e, RegistryError::Json(_)));
    assert!(!e.to_string().contains(SECRET_MARK), "{e}");
}

#[test]
fn a_broken_component_disables_its_apps() {
    let json = doc(
        r#"{"platform":"wechat","app_id":"wx2","original_id":"gh_2","component_app_id":"wxc"}"#,
        r#"{"platform":"wechat","component_app_id":"wxc","token":"ct"}"#,
    );
    let r = AppRegistry::parse_for(&json, Purpose::Verify).unwrap();
    match r.lookup(Platform::Wechat, "wx2") {
        Lookup::Disabled(e) => {
            assert_eq!(e.field(), "apps[0].component_app_id");
            assert!(
                e.to_string().contains("components[0].encoding_aes_key"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn previous_token_is_read_and_validated() {
    let ok = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"a","token":"new","previous_token":"old","encoding_aes_key":"{KEY}"}}"#
        ),
        "",
    );
    let r = AppRegistry::parse(&ok).unwrap();
    let creds = r
        .app(Platform::Wechat, "a")
        .unwrap()
        .credentials
        .as_ref()
        .unwrap();
    assert_eq!(
        creds.previous_token.as_ref().map(Secret::expose),
        Some("old")
    );
    let bad = ok.replace(r#""previous_token":"old""#, r#""previous_token":"""#);
    assert_eq!(
        AppRegistry::parse(&bad).unwrap_err().field(),
        "apps[0].previous_token"
    );
}

#[test]
fn each_purpose_reads_only_its_material() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"wx1","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"baidu","app_id":"b1","app_key":"k","app_secret":"s","default_user_type":1}}"#
        ),
        "",
    );
    let send = AppRegistry::parse_for(&json, Purpose::Send).unwrap();
    assert!(send.invalid().is_empty(), "{:?}", send.invalid());
    let b1 = send.app(Platform::Baidu, "b1").unwrap();
    assert!(b1.credentials.is_none());
    assert_eq!(b1.app_key.as_ref().map(Secret::expose), Some("k"));
    let verify = AppRegistry::parse_for(&json, Purpose::Verify).unwrap();
    let wx1 = verify.app(Platform::Wechat, "wx1").unwrap();
    assert!(wx1.app_secret.is_none() && wx1.credentials.is_some());
    assert_eq!(verify.invalid().len(), 1, "b1 has no token for ingress");
}

#[test]
fn a_component_listed_more_than_once_is_refused_whatever_the_order() {
    let c = |token: &str| {
        format!(
            r#"{{"platform":"wechat","component_app_id":"wxc","token":"{token}","encoding_aes_key":"{KEY}"}}"#
        )
    };
    let app =
        r#"{"platform":"wechat","app_id":"wx2","original_id":"gh_2","component_app_id":"wxc"}"#;
    for components in [
        [c("a"), c("b"), c("c")].join(","),
        [
            r#"{"platform":"wechat","component_app_id":"wxc","token":"a"}"#.to_owned(),
            c("b"),
        ]
        .join(","),
    ] {
        let r = AppRegistry::parse_for(&doc(app, &components), Purpose::Verify).unwrap();
        assert!(
            matches!(r.lookup(Platform::Wechat, "wx2"), Lookup::Disabled(_)),
            "{components}"
        );
        assert!(r.component(Platform::Wechat, "wxc").is_none());
    }
}

#[test]
fn the_send_part_needs_what_an_access_token_needs() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"wx1","token":"t","encoding_aes_key":"{KEY}"}},
               {{"platform":"baidu","app_id":"b1","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"wechat","app_id":"wx2","original_id":"gh_2","component_app_id":"wxc"}}"#
        ),
        &format!(
            r#"{{"platform":"wechat","component_app_id":"wxc","token":"ct","encoding_aes_key":"{KEY}"}}"#
        ),
    );
    let send = AppRegistry::parse_for(&split(&json).unwrap().send, Purpose::Send).unwrap();
    let fields: Vec<&str> = send.invalid().iter().map(|e| e.error.field()).collect();
    assert_eq!(fields, ["apps[0].app_secret", "apps[1].app_key"]);
    assert!(
        send.app(Platform::Wechat, "wx2").is_some(),
        "a 服务商 app uses the authorizer token"
    );
    // `check` reports what either function would refuse; the strict local parse does not need them.
    let checked: Vec<String> = AppRegistry::check(&json)
        .iter()
        .map(|e| e.field().to_owned())
        .collect();
    assert_eq!(checked, ["apps[0].app_secret", "apps[1].app_key"]);
    assert!(AppRegistry::parse(&json).is_ok());
}

#[test]
fn mode_defaults_to_safe_and_is_kept_in_the_verify_part_only() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"wx1","mode":"plaintext","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"wechat","app_id":"wx2","mode":"compatible","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"baidu","app_id":"b1","token":"t","encoding_aes_key":"{KEY}","app_key":"k","app_secret":"s"}},
               {{"platform":"baidu","app_id":"b2","component_app_id":"bc"}}"#
        ),
        &format!(
            r#"{{"platform":"baidu","component_app_id":"bc","token":"t","encoding_aes_key":"{KEY}"}}"#
        ),
    );
    let modes = |r: &AppRegistry| -> Vec<AppMode> {
        [
            (Platform::Wechat, "wx1"),
            (Platform::Wechat, "wx2"),
            (Platform::Baidu, "b1"),
            (Platform::Baidu, "b2"),
        ]
        .iter()
        .map(|(p, id)| r.app(*p, id).unwrap().mode)
        .collect()
    };
    let expected = [
        AppMode::Plaintext,
        AppMode::Compatible,
        AppMode::Safe,
        AppMode::Safe,
    ];
    assert_eq!(
        modes(&AppRegistry::parse(&json).unwrap()),
        expected,
        "a Baidu component app needs no original id"
    );
    let parts = split(&json).unwrap();
    let verify = AppRegistry::parse_for(&parts.verify, Purpose::Verify).unwrap();
    assert!(verify.invalid().is_empty(), "{:?}", verify.invalid());
    assert_eq!(modes(&verify), expected);
    assert!(!parts.send.contains("mode"));
    assert_eq!(AppMode::Compatible.as_str(), "compatible");
    assert_eq!(
        serde_json::to_string(&AppMode::Plaintext).unwrap(),
        "\"plaintext\""
    );
}

#[test]
fn handoff_is_a_wechat_own_app_setting_of_the_verify_part() {
    let json = doc(
        &format!(
            r#"{{"platform":"wechat","app_id":"wx1","handoff":"wechat_tool","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"wechat","app_id":"wx2","handoff":"none","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
               {{"platform":"wechat","app_id":"wx3","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}}"#
        ),
        "",
    );
    let handoffs = |r: &AppRegistry| -> Vec<Handoff> {
        ["wx1", "wx2", "wx3"]
            .iter()
            .map(|id| r.app(Platform::Wechat, id).unwrap().handoff)
            .collect()
    };
    let expected = [Handoff::WechatTool, Handoff::None, Handoff::None];
    assert_eq!(handoffs(&AppRegistry::parse(&json).unwrap()), expected);
    let parts = split(&json).unwrap();
    let verify = AppRegistry::parse_for(&parts.verify, Purpose::Verify).unwrap();
    assert_eq!(handoffs(&verify), expected);
    assert!(!parts.send.contains("handoff"));
    assert_eq!(Handoff::WechatTool.as_str(), "wechat_tool");

    let refused = [
        format!(
            r#"{{"platform":"wechat","app_id":"a","handoff":"tool","token":"t","encoding_aes_key":"{KEY}"}}"#
        ),
        format!(
            r#"{{"platform":"baidu","app_id":"a","handoff":"wechat_tool","token":"t","encoding_aes_key":"{KEY}"}}"#
        ),
        r#"{"platform":"wechat","app_id":"a","original_id":"gh_a","component_app_id":"c","handoff":"wechat_tool"}"#.to_owned(),
    ];
    let component = format!(
        r#"{{"platform":"wechat","component_app_id":"c","token":"t","encoding_aes_key":"{KEY}"}}"#
    );
    for app in refused {
        match AppRegistry::parse(&doc(&app, &component)) {
            Err(RegistryError::Invalid { field, .. }) => {
                assert_eq!(field, "apps[0].handoff", "{app}")
            }
            other => panic!("{app}: expected an error on handoff, got {other:?}"),
        }
    }
}
