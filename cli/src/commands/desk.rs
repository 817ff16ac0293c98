//! `kefu desk add-agent`: puts an agent — the first admin of an app, typically — in place on a
//! deployed stack (or `make dev`'s emulator): a user in the desk's user pool (created when
//! missing, with a temporary password printed once; the first sign-in sets the real one) and its
//! profile in the desk table with the app and role added (apps it already serves are kept). Reads
//! `DESK_USER_POOL_ID`, `DESK_TABLE` and the tables `kefu env` exports; uses the operator's own
//! credentials (`cognito-idp:AdminGetUser`, `AdminCreateUser`; the desk table).

use std::process::ExitCode;

use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use clap::{Args, Subcommand};
use serde_json::json;
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::desk::agent::{DEFAULT_CAPACITY, valid_capacity};
use shared::desk::{Agent, AgentStatus, Role};
use shared::ports::desk::DeskStore;

use crate::Error;

/// `kefu desk` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeskCommand {
    /// Create (or extend) an agent: a pool user and its membership of an app.
    AddAgent(AddAgentArgs),
}

/// `kefu desk add-agent` flags.
#[derive(Debug, Clone, Args)]
pub struct AddAgentArgs {
    /// The app, as `platform:app_id` (e.g. `wechat:wx1234567890abcdef`).
    #[arg(long)]
    pub app: String,
    /// The user name to sign in with.
    #[arg(long)]
    pub username: String,
    /// The user's email (stored on the pool user).
    #[arg(long)]
    pub email: Option<String>,
    /// The name shown in the desk (default: the user name).
    #[arg(long)]
    pub name: Option<String>,
    /// `admin` (manages agents, quick replies, settings) or `agent`.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// Conversations held at once (1–50; default 5 for a new agent).
    #[arg(long)]
    pub capacity: Option<u32>,
    /// Print JSON: `{"id","username","apps","temporary_password"}` (`null` for an existing user).
    #[arg(long)]
    pub json: bool,
}

/// A temporary password meeting the pool's default policy (upper, lower, digit, symbol, ≥ 8).
fn temporary_password() -> Result<String, Error> {
    Ok(format!("Kefu-{}-7a", crate::random_hex(8)?))
}

/// What `add-agent` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The agent id (the pool user's `sub`).
    pub id: String,
    /// The agent as stored.
    pub agent: Agent,
    /// The temporary password of a user created now (`None`: the user existed).
    pub temporary_password: Option<String>,
}

/// Puts the agent of `args` in place: the pool user in `pool` (through `cognito`), the profile in
/// `store`'s desk table.
pub async fn add_agent(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    store: &DynamoDbStore,
    args: &AddAgentArgs,
) -> Result<Added, Error> {
    let (platform, app_id) = args
        .app
        .split_once(':')
        .filter(|(p, a)| {
            !a.is_empty() && !a.contains('#') && p.parse::<shared::ids::Platform>().is_ok()
        })
        .ok_or("--app must be platform:app_id (wechat:… or baidu:…)")?;
    let role = Role::parse(&args.role).ok_or("--role must be admin or agent")?;
    let capacity = args
        .capacity
        .map(|c| valid_capacity(c).ok_or("--capacity must be 1 to 50"))
        .transpose()?;
    let existing = cognito
        .admin_get_user()
        .user_pool_id(pool)
        .username(&args.username)
        .send()
        .await;
    let (attributes, password) = match existing {
        Ok(user) => (user.user_attributes().to_vec(), None),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_user_not_found_exception()) =>
        {
            let password = temporary_password()?;
            let mut create = cognito
                .admin_create_user()
                .user_pool_id(pool)
                .username(&args.username)
                .temporary_password(&password)
                .message_action(MessageActionType::Suppress);
            if let Some(email) = &args.email {
                create = create.user_attributes(
                    AttributeType::builder()
                        .name("email")
                        .value(email)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            let created = create.send().await.map_err(|e| {
                format!(
                    "cannot create the user: {}",
                    aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
                )
            })?;
            let attributes = created
                .user()
                .map(|u| u.attributes().to_vec())
                .unwrap_or_default();
            (attributes, Some(password))
        }
        Err(e) => {
            return Err(format!(
                "cannot read the user pool: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
            )
            .into());
        }
    };
    let sub = attributes
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .ok_or("the pool user has no sub")?
        .to_owned();
    let mut agent = store.agent(&sub).await?.unwrap_or_else(|| Agent {
        id: sub.clone(),
        name: String::new(),
        apps: Default::default(),
        capacity: DEFAULT_CAPACITY,
        active: 0,
        auto_accept: false,
        status: AgentStatus::Offline,
        heartbeat_at: 0,
    });
    if let Some(name) = &args.name {
        agent.name = name.clone();
    } else if agent.name.is_empty() {
        agent.name = args.username.clone();
    }
    if let Some(c) = capacity {
        agent.capacity = c;
    }
    agent.apps.insert(format!("{platform}#{app_id}"), role);
    if let Err(e) = store.put_agent(&agent).await {
        // The pool user exists now: its temporary password must not be lost with the error.
        return Err(match &password {
            Some(p) => format!(
                "the user {} was created (temporary password: {p}) but its profile was not \
                 written: {e}; run the command again",
                args.username
            ),
            None => format!("the profile was not written: {e}"),
        }
        .into());
    }
    Ok(Added {
        id: sub,
        agent,
        temporary_password: password,
    })
}

/// Runs `kefu desk …` against the pool and tables the environment names.
pub async fn run(command: DeskCommand, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let DeskCommand::AddAgent(args) = command;
    let sdk = crate::sdk_config(endpoint).await;
    let pool = crate::required_env("DESK_USER_POOL_ID")?;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let store = crate::store_from_env(&sdk)?;
    let tables = Tables {
        desk: Some(crate::required_env(shared::config::DESK_TABLE)?),
        ..store.tables().clone()
    };
    let store = DynamoDbStore::new(store.client().clone(), tables);
    let added = add_agent(&cognito, &pool, &store, &args).await?;
    let apps: Vec<_> = added
        .agent
        .apps
        .iter()
        .map(|(app, role)| json!({ "app": app, "role": role.as_str() }))
        .collect();
    if args.json {
        println!(
            "{}",
            json!({ "id": added.id, "username": args.username, "apps": apps,
                    "temporary_password": added.temporary_password })
        );
    } else {
        println!(
            "agent {} ({}): {} of {}",
            added.id, args.username, args.role, args.app
        );
        match &added.temporary_password {
            Some(p) => println!(
                "temporary password: {p}  (sign in at the stack's DeskUrl; the first sign-in sets a new one)"
            ),
            None => println!("the user already existed: its password is unchanged"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
