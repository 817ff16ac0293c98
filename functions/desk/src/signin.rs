//! Signing agents in against the stack's user pool: user name and password (USER_PASSWORD_AUTH),
//! the new password a first sign-in must set, and refreshing the access token. The page calls
//! these through the desk's own routes, so it talks to one origin only.
//!
//! Tokens pass through and are never logged. Not here: checking tokens (`auth`).

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::SdkError;
use aws_sdk_cognitoidentityprovider::operation::initiate_auth::InitiateAuthError;
use aws_sdk_cognitoidentityprovider::operation::respond_to_auth_challenge::RespondToAuthChallengeError;
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, AuthenticationResultType, ChallengeNameType,
};
use serde::Serialize;

/// What a sign-in step answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignedIn {
    /// Signed in.
    Tokens {
        /// The access token (the bearer of every desk request).
        access_token: String,
        /// The refresh token, when issued (not on a refresh).
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<String>,
        /// Seconds until the access token expires.
        expires_in: i32,
    },
    /// A first sign-in: a new password must be set with this session.
    NewPasswordRequired {
        /// The challenge session.
        session: String,
    },
    /// Wrong user name or password, an unknown or disabled user, an expired refresh token.
    Refused,
}

/// The user pool as the desk uses it.
#[async_trait]
pub trait SignIn: Send + Sync {
    /// Signs in with a user name and password.
    async fn password(&self, username: &str, password: &str) -> Result<SignedIn, String>;
    /// Answers the new-password challenge of a first sign-in.
    async fn new_password(
        &self,
        username: &str,
        session: &str,
        new_password: &str,
    ) -> Result<SignedIn, String>;
    /// A new access token for a refresh token.
    async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, String>;
}

/// [`SignIn`] on Cognito (moto's locally).
pub struct CognitoSignIn {
    client: Client,
    client_id: String,
}

impl CognitoSignIn {
    /// Sign-in for the pool's app client `client_id`.
    pub fn new(client: Client, client_id: String) -> Self {
        Self { client, client_id }
    }
}

fn tokens(result: Option<&AuthenticationResultType>) -> Result<SignedIn, String> {
    let r = result.ok_or("Cognito answered neither tokens nor a challenge")?;
    Ok(SignedIn::Tokens {
        access_token: r
            .access_token()
            .ok_or("Cognito answered no access token")?
            .to_owned(),
        refresh_token: r.refresh_token().map(str::to_owned),
        expires_in: r.expires_in(),
    })
}

/// A refusal the user caused (wrong password, unknown user) is an outcome; the rest an error.
fn refused_or<E, R>(
    err: SdkError<E, R>,
    is_refusal: impl Fn(&E) -> bool,
) -> Result<SignedIn, String>
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) if is_refusal(e) => Ok(SignedIn::Refused),
        _ => Err(format!(
            "Cognito: {}",
            aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err)
        )),
    }
}

fn initiate_refusal(e: &InitiateAuthError) -> bool {
    matches!(
        e,
        InitiateAuthError::NotAuthorizedException(_)
            | InitiateAuthError::UserNotFoundException(_)
            | InitiateAuthError::PasswordResetRequiredException(_)
            | InitiateAuthError::UserNotConfirmedException(_)
    )
}

#[async_trait]
impl SignIn for CognitoSignIn {
    async fn password(&self, username: &str, password: &str) -> Result<SignedIn, String> {
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err) => return refused_or(err, initiate_refusal),
        };
        match (out.challenge_name(), out.session()) {
            (Some(ChallengeNameType::NewPasswordRequired), Some(session)) => {
                Ok(SignedIn::NewPasswordRequired {
                    session: session.to_owned(),
                })
            }
            (Some(other), _) => Err(format!(
                "Cognito asked for an unsupported challenge {other:?}"
            )),
            (None, _) => tokens(out.authentication_result()),
        }
    }

    async fn new_password(
        &self,
        username: &str,
        session: &str,
        new_password: &str,
    ) -> Result<SignedIn, String> {
        let result = self
            .client
            .respond_to_auth_challenge()
            .client_id(&self.client_id)
            .challenge_name(ChallengeNameType::NewPasswordRequired)
            .session(session)
            .challenge_responses("USERNAME", username)
            .challenge_responses("NEW_PASSWORD", new_password)
            .send()
            .await;
        match result {
            Ok(out) => tokens(out.authentication_result()),
            Err(err) => refused_or(err, |e| {
                matches!(
                    e,
                    RespondToAuthChallengeError::NotAuthorizedException(_)
                        | RespondToAuthChallengeError::InvalidPasswordException(_)
                        | RespondToAuthChallengeError::CodeMismatchException(_)
                        | RespondToAuthChallengeError::ExpiredCodeException(_)
                        | RespondToAuthChallengeError::UserNotFoundException(_)
                )
            }),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, String> {
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token)
            .send()
            .await;
        match result {
            Ok(out) => tokens(out.authentication_result()),
            Err(err) => refused_or(err, initiate_refusal),
        }
    }
}
